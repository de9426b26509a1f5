//! Pausing and resuming flow runs, and flow run inputs (issue 9 §4), as Prefect 3.9.1's
//! `api/flow_runs.py` does them (`resume_flow_run`, `create_flow_run_input`,
//! `filter_flow_run_input`, `read_flow_run_input`, `delete_flow_run_input`).
//!
//! A flow pauses itself by proposing PAUSED (`pause_flow_run`: its process waits, polling
//! for RUNNING) or suspends itself by proposing PAUSED/`Suspended` with `pause_reschedule`
//! (`suspend_flow_run`: its process exits). The orchestration rules are in
//! `pushpool_core::orchestration` (`HandlePausingFlows`, `HandleResumingPausedFlows`).
//! [`Service::resume_flow_run`] moves a paused run to RUNNING and a suspended one to
//! `SCHEDULED/Resuming` (due now), which the submitter submits as a new attempt (its old
//! job has exited: the old infrastructure pid is not waited for, see `Service::submit`); the
//! flow then runs from the top, skipping the pauses that already fired (their keys are in
//! `empirical_policy.pause_keys`).
//!
//! With `wait_for_input=`, the flow stores the JSON schema of the input it waits for under
//! its pause's keyset (`state_details.run_input_keyset`: `schema`, `description`,
//! `response` keys), and a resume must bring a `run_input` valid against it, stored under the
//! `response` key, which the flow reads once resumed.

use chrono::Utc;
use pushpool_core::orchestration::SetStateStatus;
use pushpool_core::run_input::{FlowRunInput, check_key, validate_run_input};
use pushpool_core::state::{State, StateCreate, StateType};
use pushpool_store::StoreError;
use serde_json::Value;
use tracing::warn;
use uuid::Uuid;

use crate::{FlowRunTransition, Service, UseCaseError};

/// What `POST /flow_runs/{id}/resume` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// The resume state (RUNNING, or `SCHEDULED/Resuming` for a suspended run) went through
    /// orchestration: Prefect answers with the orchestration's status and details, 201 when
    /// a state was written.
    Orchestrated(Box<FlowRunTransition>),
    /// Refused before orchestration. Prefect answers these with `status` (ABORT for a run
    /// that is not paused, REJECT for an input problem), `StateAbortDetails` (`{"type":
    /// "abort_details", "reason": ...}`) and the run's current state (`null` for ABORT),
    /// with 200.
    Refused {
        /// ABORT or REJECT.
        status: SetStateStatus,
        /// Prefect's reason.
        reason: String,
        /// The state answered.
        state: Option<Box<State>>,
    },
}

/// `POST /flow_runs/{id}/input/filter`'s body, with Prefect's defaults (`limit` 1,
/// `exclude_keys` none).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInputFilter {
    /// Keys starting with this (SQL `LIKE 'prefix%'` in Prefect: `%` and `_` in the prefix
    /// are wildcards there; pushpool compares literally, and keys hold neither).
    pub prefix: String,
    /// At most this many, oldest first.
    #[serde(default = "one")]
    pub limit: usize,
    /// Keys to leave out.
    #[serde(default)]
    pub exclude_keys: Vec<String>,
}

fn one() -> usize {
    1
}

/// Whether a value holds one of Prefect's hydration placeholders (`{"__prefect_kind":
/// ...}`: jinja templates, workspace variables, JSON text), which Prefect's resume renders
/// before validating and pushpool does not.
fn has_placeholder(value: &Value) -> bool {
    match value {
        Value::Object(o) => o.contains_key("__prefect_kind") || o.values().any(has_placeholder),
        Value::Array(a) => a.iter().any(has_placeholder),
        _ => false,
    }
}

impl Service {
    /// `POST /flow_runs/{id}/input`: stores an input of the run.
    ///
    /// # Errors
    /// `Invalid` naming `key` (not lowercase letters, digits and dashes); `Store(NotFound)`
    /// "Flow run not found"; `Store(Conflict)` "A flow run input with this key already
    /// exists."; `Store`.
    pub async fn create_flow_run_input(
        &self,
        flow_run_id: Uuid,
        key: String,
        value: String,
        sender: Option<String>,
    ) -> Result<(), UseCaseError> {
        check_key(&key).map_err(UseCaseError::Invalid)?;
        self.store().read_flow_run(flow_run_id).await?;
        let now = Utc::now();
        let input = FlowRunInput {
            id: Uuid::new_v4(),
            created: now,
            updated: now,
            flow_run_id,
            key,
            value,
            sender,
        };
        Ok(self.store().create_flow_run_input(&input).await?)
    }

    /// `POST /flow_runs/{id}/input/filter`: the run's inputs whose key starts with `prefix`,
    /// except `exclude_keys`, oldest first, at most `limit` (an unknown run has none).
    ///
    /// # Errors
    /// `Store`.
    pub async fn filter_flow_run_inputs(
        &self,
        flow_run_id: Uuid,
        filter: &RunInputFilter,
    ) -> Result<Vec<FlowRunInput>, UseCaseError> {
        Ok(self
            .store()
            .list_flow_run_inputs(flow_run_id)
            .await?
            .into_iter()
            .filter(|i| i.key.starts_with(&filter.prefix) && !filter.exclude_keys.contains(&i.key))
            .take(filter.limit)
            .collect())
    }

    /// Deletes the inputs stored under a pause's `run_input_keyset` when the pause is
    /// written (`HandlePausingFlows.after_transition`: they belong to an earlier attempt and
    /// must not be read as this one's answer). Failures are logged: the pause stands.
    pub(crate) async fn forget_pause_inputs(&self, flow_run_id: Uuid, state: &State) {
        if state.r#type != StateType::Paused {
            return;
        }
        let Some(Value::Object(keyset)) = state.state_details.run_input_keyset.as_ref() else {
            return;
        };
        for key in keyset.values().filter_map(Value::as_str) {
            match self.store().delete_flow_run_input(flow_run_id, key).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => {
                    warn!(flow_run_id = %flow_run_id, key, error = %e, "deleting an earlier attempt's run input failed")
                }
            }
        }
    }

    /// `POST /flow_runs/{id}/resume` (Prefect's `resume_flow_run`): a run that is not PAUSED
    /// is refused (ABORT "Cannot resume a flow run that is not paused."). When the pause
    /// waits for input (`run_input_keyset`), `run_input` (`{}` when absent) is validated
    /// against the stored schema (REJECT "Run input schema not found.", "Run input schema
    /// is not valid JSON.", "Reason: ..."). Then RUNNING is proposed (a blocking pause), or
    /// `SCHEDULED/Resuming` due now (a suspended run, `pause_reschedule`), through the
    /// orchestration rules. A `run_input` for a pause that waits for none is not stored, as
    /// in Prefect.
    ///
    /// pushpool stores the input under the keyset's `response` key *before* proposing the
    /// state and deletes it again when the proposal is not accepted (Prefect does both in
    /// one transaction): so a paused flow, which polls for RUNNING and then reads the
    /// response, never sees RUNNING before its input.
    ///
    /// # Errors
    /// `Store(NotFound)` "Flow run not found" (Prefect answers a 500 for an unknown run);
    /// `Invalid` naming `run_input` for hydration placeholders (`__prefect_kind`), which
    /// pushpool does not render; `Store(Conflict)` "A flow run input with this key already
    /// exists." when a response is already stored (two resumes at once; Prefect's
    /// transaction fails then); `KeptChanging`; `Store`.
    pub async fn resume_flow_run(
        &self,
        id: Uuid,
        run_input: Option<Value>,
    ) -> Result<Resume, UseCaseError> {
        let run = self.store().read_flow_run(id).await?;
        let Some(state) = run.state.filter(|s| s.r#type == StateType::Paused) else {
            return Ok(Resume::Refused {
                status: SetStateStatus::Abort,
                reason: "Cannot resume a flow run that is not paused.".into(),
                state: None,
            });
        };
        let reject = |reason: &str| {
            Ok(Resume::Refused {
                status: SetStateStatus::Reject,
                reason: reason.into(),
                state: Some(Box::new(state.clone())),
            })
        };
        let keyset = state.state_details.run_input_keyset.clone();
        let mut response = None;
        if let Some(keyset) = keyset.as_ref().filter(|k| !k.is_null()) {
            let run_input = run_input.unwrap_or_else(|| Value::Object(Default::default()));
            if has_placeholder(&run_input) {
                return Err(UseCaseError::Invalid(
                    "run_input: values with `__prefect_kind` (jinja templates, workspace \
                     variables) are not rendered by pushpool; send plain values"
                        .into(),
                ));
            }
            let Some(schema_key) = keyset.get("schema").and_then(Value::as_str) else {
                return reject("Run input schema not found.");
            };
            let schema = match self.store().read_flow_run_input(id, schema_key).await {
                Ok(s) => s,
                Err(StoreError::NotFound(_)) => return reject("Run input schema not found."),
                Err(e) => return Err(e.into()),
            };
            if let Err(reason) = validate_run_input(&run_input, &schema.value) {
                return reject(&reason);
            }
            let empty = match &run_input {
                Value::Object(o) => o.is_empty(),
                Value::Null => true,
                _ => false,
            };
            if let (false, Some(key)) = (empty, keyset.get("response").and_then(Value::as_str)) {
                let now = Utc::now();
                let input = FlowRunInput {
                    id: Uuid::new_v4(),
                    created: now,
                    updated: now,
                    flow_run_id: id,
                    key: key.to_owned(),
                    value: run_input.to_string(),
                    sender: None,
                };
                self.store().create_flow_run_input(&input).await?;
                response = Some(input.key);
            }
        }
        let proposed = if state.state_details.pause_reschedule {
            let details = pushpool_core::state::StateDetails {
                scheduled_time: Some(Utc::now()),
                ..Default::default()
            };
            StateCreate {
                r#type: StateType::Scheduled,
                name: Some("Resuming".into()),
                message: None,
                data: None,
                state_details: Some(details),
            }
        } else {
            StateCreate {
                r#type: StateType::Running,
                name: None,
                message: None,
                data: None,
                state_details: None,
            }
        };
        let result = self.set_flow_run_state(id, proposed, false).await;
        let accepted = matches!(&result, Ok(t) if t.decision.status() == SetStateStatus::Accept);
        if let (false, Some(key)) = (accepted, response) {
            match self.store().delete_flow_run_input(id, &key).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => {
                    warn!(flow_run_id = %id, key, error = %e, "deleting the run input of a resume that was not accepted failed")
                }
            }
        }
        Ok(Resume::Orchestrated(Box::new(result?)))
    }
}
