//! The one error type handlers return, and the one place it becomes a `tonic::Status` (gRPC)
//! or an HTTP status (webhooks, the HTTP shapes a service serves beside gRPC).
//!
//! Each service's own failures (a sealing error, an upstream refusal, a domain rule) convert
//! into [`ApiError`], whose variants are the small set of error codes every caller sees; the
//! code decides the gRPC status and the HTTP status alike. Internal details are logged, never
//! returned to the caller.

use tenantry_eventstore::{ExecuteError, InvalidToken, StoreError, projection::Lagging};
use tonic::{Code, Status};

/// The error codes callers see (gRPC status codes), each with a message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; names the field so a client can point at it.
    #[error("invalid argument: {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// Lost an optimistic-concurrency race too many times; safe to retry.
    #[error("aborted: {0}")]
    Aborted(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many attempts; try again later.
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Aborted(_) => Code::Aborted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// The HTTP status of the same error, for HTTP endpoints (the usual gRPC ↔ HTTP mapping).
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidArgument { .. } => S::BAD_REQUEST,
            Self::NotFound(_) => S::NOT_FOUND,
            Self::AlreadyExists(_) | Self::Aborted(_) => S::CONFLICT,
            Self::PermissionDenied(_) => S::FORBIDDEN,
            Self::Unauthenticated(_) => S::UNAUTHORIZED,
            Self::FailedPrecondition(_) => S::PRECONDITION_FAILED,
            Self::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            Self::ResourceExhausted(_) => S::TOO_MANY_REQUESTS,
            Self::DeadlineExceeded(_) => S::GATEWAY_TIMEOUT,
            Self::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// A gRPC answer as the error it stands for: an HTTP endpoint that calls a gRPC handler
    /// answers with the same status and message a gRPC caller gets.
    pub fn from_status(status: &Status) -> Self {
        let m = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument => match m.split_once(": ") {
                Some((field, reason)) => Self::invalid(field, reason),
                None => Self::invalid("request", m),
            },
            Code::NotFound => Self::NotFound(m),
            Code::AlreadyExists => Self::AlreadyExists(m),
            Code::PermissionDenied => Self::PermissionDenied(m),
            Code::Unauthenticated => Self::Unauthenticated(m),
            Code::FailedPrecondition => Self::FailedPrecondition(m),
            Code::Aborted => Self::Aborted(m),
            Code::Unavailable => Self::Unavailable(m),
            Code::ResourceExhausted => Self::ResourceExhausted(m),
            Code::DeadlineExceeded => Self::DeadlineExceeded(m),
            _ => Self::Internal(m),
        }
    }
}

/// An HTTP endpoint's error: its status, and the same message gRPC callers get, as JSON
/// (`{"error":"<code>","message":"…"}`).
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = self.http_status();
        let grpc = Status::from(self);
        let body = serde_json::json!({
            "error": format!("{:?}", grpc.code()).to_lowercase(),
            "message": grpc.message(),
        });
        (status, axum::Json(body)).into_response()
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Status::internal("internal error")
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dependency unavailable");
                Status::unavailable("a dependency is unavailable, retry later")
            }
            ApiError::InvalidArgument { field, reason } => {
                Status::invalid_argument(format!("{field}: {reason}"))
            }
            other => {
                let code = other.code();
                let message = match other {
                    ApiError::NotFound(m)
                    | ApiError::AlreadyExists(m)
                    | ApiError::PermissionDenied(m)
                    | ApiError::Unauthenticated(m)
                    | ApiError::FailedPrecondition(m)
                    | ApiError::Aborted(m)
                    | ApiError::ResourceExhausted(m)
                    | ApiError::DeadlineExceeded(m) => m,
                    _ => String::new(),
                };
                Status::new(code, message)
            }
        }
    }
}

impl From<InvalidToken> for ApiError {
    fn from(e: InvalidToken) -> Self {
        Self::invalid(e.field, e.reason)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidToken(t) => t.into(),
            StoreError::Conflict { subject, .. } => {
                Self::Aborted(format!("concurrent modification of {subject}"))
            }
            StoreError::TooLarge { .. } => Self::invalid("request", "too large"),
            StoreError::Unavailable(d) => Self::Unavailable(d),
            StoreError::Corrupt(d) => Self::Internal(d),
        }
    }
}

impl<E: Into<ApiError>> From<ExecuteError<E>> for ApiError {
    fn from(e: ExecuteError<E>) -> Self {
        match e {
            ExecuteError::Rejected(domain) => domain.into(),
            ExecuteError::Contended(subject) => Self::Aborted(format!(
                "too many concurrent modifications of {subject}, retry"
            )),
            ExecuteError::IdReused => Self::invalid(
                crate::command::IDEMPOTENCY_KEY,
                "already used for a different request; use a new key for a new request",
            ),
            ExecuteError::Store(store) => store.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(format!("database: {e}"))
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<Lagging> for ApiError {
    fn from(e: Lagging) -> Self {
        Self::DeadlineExceeded(e.to_string())
    }
}

/// Why an aggregate refused a command: what every service's `decide` returns.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    /// The credential presented (a refresh token, an invitation) is not valid.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A bound on how much a tenant may have (accounts, domains, routes): named, so a client
    /// can tell which one and ask for a plan that raises it.
    #[error("{limit}: {reason}")]
    LimitReached { limit: &'static str, reason: String },
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub fn limit(limit: &'static str, reason: impl Into<String>) -> Self {
        Self::LimitReached {
            limit,
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
            DomainError::Unauthenticated(why) => ApiError::Unauthenticated(why),
            DomainError::Invalid { field, reason } => ApiError::invalid(field, reason),
            e @ DomainError::LimitReached { .. } => ApiError::ResourceExhausted(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_code_gives_the_grpc_and_the_http_status() {
        let cases = [
            (
                ApiError::invalid("slug", "too short"),
                Code::InvalidArgument,
                400,
            ),
            (ApiError::NotFound("tenant".into()), Code::NotFound, 404),
            (
                ApiError::PermissionDenied("no".into()),
                Code::PermissionDenied,
                403,
            ),
            (
                ApiError::FailedPrecondition("suspended".into()),
                Code::FailedPrecondition,
                412,
            ),
            (
                ApiError::ResourceExhausted("max_routes".into()),
                Code::ResourceExhausted,
                429,
            ),
            (
                ApiError::Internal("secret detail".into()),
                Code::Internal,
                500,
            ),
        ];
        for (error, code, http) in cases {
            assert_eq!(error.http_status().as_u16(), http, "{error}");
            let status = Status::from(error);
            assert_eq!(status.code(), code);
            assert!(!status.message().contains("secret detail"));
        }
    }
}
