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
    /// A [`crate::CounterChange`] of a [`crate::Transaction`] would break its bound (an
    /// increment past its limit, a decrement below 0); nothing was written. Carries the
    /// counter's name.
    #[error("counter {0:?} is at its bound")]
    LimitReached(String),
    /// Retry later (busy database, throttling).
    #[error("storage is temporarily unavailable")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The storage has no room for the write (SQLite `SQLITE_FULL`: the disk or the database's
    /// size limit is full; DynamoDB `ItemCollectionSizeLimitExceededException`). Nothing of the
    /// failed operation was written; reads still work.
    #[error("storage is full")]
    Full(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The storage cannot take writes, or cannot be read, until an operator acts (SQLite
    /// `SQLITE_READONLY`, `SQLITE_IOERR`, `SQLITE_CANTOPEN`). `reason` says what is wrong in
    /// words that are safe to show a client (no path, no data); the source keeps the detail
    /// for the log. Nothing of the failed operation was written.
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// What is wrong (`the database is read-only`).
        reason: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The document is larger than the store keeps ([`crate::MAX_RUN_DOCUMENT_BYTES`] for
    /// flow runs and task runs, in both adapters); the message says how large it is, the
    /// limit, and its largest field. Nothing was written.
    #[error("{0}")]
    TooLarge(String),
    /// Anything else from the backend.
    #[error("storage backend error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}
