//! [`UseCaseError`]: the errors of the use cases the API calls (create a run, set a state,
//! change a run), in terms the API maps one to one to HTTP statuses.

use pushpool_store::StoreError;

use crate::write::{Conflict, KeptChanging};

/// Errors of the API's use cases (flow runs and task runs). Each variant is one HTTP status
/// in the API's mapping; the messages are the response's `detail`, and name the field.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    /// 422: a field has a bad value; the message names it (`job_variables.cpu: ...`).
    #[error("{0}")]
    Invalid(String),
    /// 400: the request cannot apply to the resource as it is (Prefect's own 400s: job
    /// variables of a run that is no longer SCHEDULED); the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// 404: something the request points at does not exist; the message names it
    /// (`flow_id: flow <id> not found`).
    #[error("{0}")]
    NotFound(String),
    /// 503 with `Retry-After`: the resource kept changing under the write
    /// ([`crate::MAX_WRITE_ATTEMPTS`] lost races); nothing was written.
    #[error(transparent)]
    KeptChanging(#[from] KeptChanging),
    /// The store failed (its own `NotFound` included: "Flow run not found").
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Conflict for UseCaseError {
    fn is_version_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::VersionConflict(_)))
    }
}

/// The task run use cases' error (the same type: task runs and flow runs map alike).
pub type TaskRunError = UseCaseError;
