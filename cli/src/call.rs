//! Where a call goes and what travels with it, and the call itself: a unary gRPC call with
//! the [`DynamicCodec`](crate::codec::DynamicCodec).

use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
use prost_reflect::DynamicMessage;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::catalog::{Rpc, ServiceGroup};
use crate::codec::DynamicCodec;
use crate::commands::{DEFAULT_ENDPOINT, ENDPOINT, IDEMPOTENCY_KEY, TOKEN};

/// Where a call goes, and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http://host:port`.
    pub endpoint: String,
    pub token: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Why a call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// A setting that cannot work (a usage error).
    #[error("{flag}: {reason}")]
    Setting { flag: &'static str, reason: String },
    #[error("cannot reach {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    /// The answer: a gRPC status other than OK.
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
}

impl Target {
    /// From an RPC command's matches. The endpoint, first found: `--endpoint`,
    /// `TENANTRY_<SERVICE>_ENDPOINT`, `TENANTRY_ENDPOINT`, the gateway's edge on loopback.
    pub fn from_matches(
        matches: &ArgMatches,
        service: &ServiceGroup,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CallError> {
        let flag = matches.try_get_one::<String>(ENDPOINT).ok().flatten();
        let from_command_line = matches.value_source(ENDPOINT) == Some(ValueSource::CommandLine);
        let endpoint = match (flag, from_command_line) {
            (Some(url), true) => url.clone(),
            (flag, _) => env(&service.endpoint_variable())
                .filter(|v| !v.trim().is_empty())
                .or_else(|| flag.cloned())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        };
        let text = |name: &str| {
            matches
                .try_get_one::<String>(name)
                .ok()
                .flatten()
                .filter(|v| !v.is_empty())
                .cloned()
        };
        Ok(Self {
            endpoint: normalize(&endpoint)?,
            token: text(TOKEN),
            idempotency_key: text(IDEMPOTENCY_KEY),
        })
    }
}

/// `127.0.0.1:7000` → `http://127.0.0.1:7000`; TLS endpoints are refused with a reason
/// rather than failing later on a certificate nothing here can verify.
fn normalize(endpoint: &str) -> Result<String, CallError> {
    let endpoint = endpoint.trim();
    let url = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    };
    if url.starts_with("https://") {
        return Err(CallError::Setting {
            flag: "--endpoint",
            reason: format!(
                "{url}: TLS is not supported by tenantry yet (no trust roots are built in); \
                 call the plain-HTTP/2 API port, e.g. through a port forward"
            ),
        });
    }
    if !url.starts_with("http://") {
        return Err(CallError::Setting {
            flag: "--endpoint",
            reason: format!("{url}: expected http://host:port"),
        });
    }
    Ok(url)
}

/// Calls `rpc` at `target` with `request`; the response or the status the server answered.
pub async fn call(
    rpc: &Rpc,
    target: &Target,
    request: DynamicMessage,
) -> Result<DynamicMessage, CallError> {
    let setting = |flag, reason: String| CallError::Setting { flag, reason };
    let endpoint = Endpoint::from_shared(target.endpoint.clone())
        .map_err(|e| setting("--endpoint", format!("{}: {e}", target.endpoint)))?
        .connect_timeout(Duration::from_secs(5));
    let mut request = tonic::Request::new(request);
    if let Some(token) = &target.token {
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| setting("--token", "not a valid header value".into()))?;
        request.metadata_mut().insert("authorization", value);
    }
    if let Some(key) = &target.idempotency_key {
        let value = MetadataValue::try_from(key.as_str())
            .map_err(|_| setting("--idempotency-key", "not a valid header value".into()))?;
        request.metadata_mut().insert("idempotency-key", value);
    }
    let path = PathAndQuery::from_maybe_shared(rpc.path())
        .map_err(|e| setting("rpc", format!("{}: {e}", rpc.path())))?;
    let channel = endpoint.connect().await.map_err(|e| CallError::Connect {
        endpoint: target.endpoint.clone(),
        reason: chain(&e),
    })?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| CallError::Connect {
        endpoint: target.endpoint.clone(),
        reason: chain(&e),
    })?;
    let codec = DynamicCodec::new(rpc.method.output());
    grpc.unary(request, path, codec)
        .await
        .map(tonic::Response::into_inner)
        .map_err(CallError::Status)
}

/// An error and its causes on one line (tonic's own message is only "transport error").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A status code as gRPC spells it: `INVALID_ARGUMENT`.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
