//! Upgraded connections through the API edge (the orchestration feed's WebSocket at
//! `/api/tenants/{id}/orchestration/events`). The edge's client speaks HTTP/2 only, and an
//! upgrade is an HTTP/1.1 exchange: a request asking for one goes to the service over an
//! HTTP/1.1 connection of its own, and after the service's `101` the client's connection and
//! the service's are spliced byte for byte until either side closes.
//!
//! Authentication is the edge's as for every other call (a credential in a header is checked
//! before anything is forwarded); a request without one goes on, and the service decides (the
//! feed's first message `{"type":"auth",…}` is read by the service, through the splice).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::uri::Authority;
use http::{StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for the service's answer to the upgrade request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("the client's connection cannot be upgraded")]
    NotUpgradable,
    #[error("the service did not answer in time")]
    Timeout,
    #[error("the service is unreachable: {0}")]
    Connect(#[from] std::io::Error),
    #[error("the service's answer: {0}")]
    Upstream(#[from] hyper::Error),
    #[error("bad upstream address")]
    Address,
}

/// Sends the upgrade `request` to the service at `target`. Its answer is the client's; a
/// `101` also splices the two connections (on a task of their own).
pub async fn forward(mut request: Request, target: &Authority) -> Result<Response, UpgradeError> {
    let client_side = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or(UpgradeError::NotUpgradable)?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.as_str()))
        .await
        .map_err(|_| UpgradeError::Timeout)??;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(tcp)).await?;
    // Drives the connection, and hands it over to the splice after a 101.
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let (mut parts, body) = request.into_parts();
    // HTTP/1.1's origin form: the path alone, the service named in `Host`.
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
    parts.version = http::Version::HTTP_11;
    let host = http::HeaderValue::from_str(target.as_str()).map_err(|_| UpgradeError::Address)?;
    parts.headers.insert(header::HOST, host);
    let mut response = tokio::time::timeout(
        ANSWER_TIMEOUT,
        sender.send_request(Request::from_parts(parts, body)),
    )
    .await
    .map_err(|_| UpgradeError::Timeout)??;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(response.map(Body::new));
    }
    let service_side = hyper::upgrade::on(&mut response);
    tokio::spawn(splice(client_side, service_side));
    // The 101 has no body: the connection itself is what follows.
    let (parts, _) = response.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

async fn splice(client: hyper::upgrade::OnUpgrade, service: hyper::upgrade::OnUpgrade) {
    let (client, service) = match (client.await, service.await) {
        (Ok(c), Ok(s)) => (c, s),
        (c, s) => {
            tracing::warn!(client = ?c.err(), service = ?s.err(), "edge: upgrade failed");
            return;
        }
    };
    let (mut client, mut service) = (TokioIo::new(client), TokioIo::new(service));
    let _ = tokio::io::copy_bidirectional(&mut client, &mut service).await;
}
