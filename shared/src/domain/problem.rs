//! What can be wrong with one input field, in words safe to show Okta.

use thiserror::Error;

/// What is wrong with one field. The texts are safe to send to Okta.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("is missing")]
    Missing,
    #[error("has the wrong JSON type")]
    WrongType,
    #[error("{0}")]
    Invalid(&'static str),
}

impl Problem {
    /// A stable machine-readable reason for logs and `errorCauses`.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::Missing => "MISSING_FIELD",
            Problem::WrongType => "WRONG_TYPE",
            Problem::Invalid(_) => "INVALID_VALUE",
        }
    }
}
