//! The port's error type.

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
            source: None,
        }
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}
