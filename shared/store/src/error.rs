//! The port's error type.

/// Errors of a [`crate::Store`], in the caller's terms.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such resource; the message names it (`Work pool "x" not found.`).
    #[error("{0}")]
    NotFound(String),
    /// A unique key is taken; the message says which.
    #[error("{0}")]
    Conflict(String),
    /// A conditional flow run write lost a race: the stored version moved on.
    #[error("flow run {0} was changed concurrently")]
    VersionConflict(uuid::Uuid),
    /// Retry later (busy database, throttling).
    #[error("storage is temporarily unavailable")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else from the backend.
    #[error("storage backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
