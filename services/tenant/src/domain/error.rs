use tenantry_kit::ApiError;
use thiserror::Error;

/// Why an aggregate refused a command.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound(what) => ApiError::NotFound(what),
            DomainError::AlreadyExists(what) => ApiError::AlreadyExists(what),
            DomainError::Precondition(why) => ApiError::FailedPrecondition(why),
            DomainError::Invalid { field, reason } => ApiError::invalid(field, reason),
        }
    }
}
