//! The pieces of a service's HTTP shapes (the seed's JSON endpoints) that are thin adapters
//! over its own gRPC API: a lazy channel to the service's own port, and the gRPC request
//! carrying the HTTP caller's credential. Authentication, the access policy and validation
//! stay the gRPC path's, one way of doing each; errors come back through
//! [`ApiError::from_status`] and its `IntoResponse`.

use crate::ApiError;

/// A channel to the service's own gRPC port (connected on first use); `None` only for an
/// address that is not a URI, which a bound socket address never is.
pub fn own_channel(addr: std::net::SocketAddr) -> Option<tonic::transport::Channel> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map(|e| e.connect_lazy())
        .ok()
}

/// `message` as a gRPC request carrying the caller's `Authorization` (and `x-api-key`).
pub fn grpc_request<T>(
    headers: &http::HeaderMap,
    message: T,
) -> Result<tonic::Request<T>, ApiError> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::Unauthenticated("malformed Authorization header".into()))?;
        request.metadata_mut().insert("authorization", value);
    }
    if let Some(value) = headers.get("x-api-key").and_then(|v| v.to_str().ok())
        && let Ok(value) = value.parse()
    {
        request.metadata_mut().insert("x-api-key", value);
    }
    Ok(request)
}
