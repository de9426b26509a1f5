//! The port's error type.

/// The longest `Retry-After` the service honours (seconds): a provider asking for more is
/// retried after this long, and the service's retry budget still applies.
pub const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest provider error message (characters): longer ones (an API quoting a whole
/// request, a long cause chain) are cut at a character boundary and end with `…`. Run
/// messages quote provider errors, so they stay readable in Prefect's UI.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// `message` cut to [`MAX_MESSAGE_CHARS`] characters (the last one `…` when cut).
pub fn cap_message(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut out: String = message.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    out.push('…');
    out
}

/// A provider failure, classified for the submitter.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The job configuration is unusable; `field` is its dotted path in the job
    /// configuration (`task_definition.cpu`). Permanent.
    #[error("invalid job configuration: {field}: {message}")]
    InvalidConfiguration {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The provider refused for good (authorisation, validation, missing cluster); `message`
    /// is the provider's own reason. The run ends CRASHED with it.
    #[error("{message}")]
    Permanent {
        /// The provider's reason.
        message: String,
        /// Underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Try again later (throttling, 5xx, timeouts).
    #[error("{message}")]
    Transient {
        /// What happened.
        message: String,
        /// How long the provider asked to wait (an HTTP 429's `Retry-After`); the service
        /// waits at least this long (capped at [`MAX_RETRY_AFTER`]) before the next try.
        retry_after: Option<std::time::Duration>,
        /// Underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl ProviderError {
    /// [`ProviderError::InvalidConfiguration`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidConfiguration {
            field: field.into(),
            message: message.into(),
        }
    }

    /// [`ProviderError::Permanent`] without a source.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Permanent {
            message: message.into(),
            source: None,
        }
    }

    /// [`ProviderError::Transient`] without a source.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// [`ProviderError::Transient`] with the provider's `Retry-After`.
    pub fn throttled(message: impl Into<String>, retry_after: Option<std::time::Duration>) -> Self {
        Self::Transient {
            message: message.into(),
            retry_after,
            source: None,
        }
    }

    /// The same error with its message cut to [`MAX_MESSAGE_CHARS`] ([`cap_message`]).
    #[must_use]
    pub fn capped(mut self) -> Self {
        match &mut self {
            Self::InvalidConfiguration { message, .. }
            | Self::Permanent { message, .. }
            | Self::Transient { message, .. } => *message = cap_message(message),
        }
        self
    }

    /// The provider's requested wait, for a transient error that has one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}
