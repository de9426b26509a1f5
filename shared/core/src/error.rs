//! The crate's error type.

use crate::template::TemplateError;

/// Errors of the domain: invalid input, named by its field.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A field of a request is invalid; `field` is its dotted path (`work_pool.type`).
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A job template or job variables problem.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl CoreError {
    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
