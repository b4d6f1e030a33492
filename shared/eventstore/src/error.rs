use thiserror::Error;

/// A value that cannot be used as a subject token (or Redis key part, or filter).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct InvalidToken {
    /// The name of the offending field, as the caller knows it.
    pub field: &'static str,
    pub reason: &'static str,
}

/// A failure of the event store itself (not a rejected command).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    InvalidToken(#[from] InvalidToken),
    /// The aggregate's subject has moved past the expected sequence.
    #[error("wrong last sequence for {subject}: expected {expected}")]
    Conflict { subject: String, expected: u64 },
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("stored event could not be decoded: {0}")]
    Corrupt(String),
    #[error("message too large: {size} bytes, at most {max}")]
    TooLarge { size: usize, max: usize },
}
