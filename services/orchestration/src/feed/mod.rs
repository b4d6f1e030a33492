//! The WebSocket feed: `GET /api/tenants/{id}/orchestration/events[?after=<position>]`.
//!
//! - **Authentication**: an `Authorization: Bearer …` (or `x-api-key`) header, or, as a
//!   browser does (it cannot set headers on a WebSocket), a first message
//!   `{"type":"auth","token":"…"}` within 5 s. The credential is checked by calling this
//!   service's own gRPC `ListDeployments` with it: the same verification, role (viewer) and
//!   tenant check as every RPC, in one place. Another tenant's token closes the socket with
//!   4403; a bad or missing one with 4401; an access token closes the socket with 4401 when it
//!   expires.
//! - **Messages**: `{"type":"subscribed","tenant_id","position"}` first, then one per event:
//!   `{type, tenant_id, deployment_id, position, at, data}`, `type` being the seed's names
//!   (`pod.created`, `pod.deleted`, `health.changed`, `deployment.updated`,
//!   `autoscaling.triggered`; `pod.draining` for an instance taken out of the gateways'
//!   rotation before it stops; and `deployment.<what>` for the rest).
//! - **Resume**: `?after=<position>` replays the tenant's deployment events after it, then
//!   continues live: one ordered consumer from that position, so nothing is missed or
//!   repeated between the replay and the live part. Without `after`, the feed starts at the
//!   log's end (a dashboard reads `GetDeployment` and subscribes after its `position`).
//! - **Bounded**: at most `buffer` messages wait for a client; when a client reads too slowly
//!   for that, the socket is closed with 4008 and a reason saying where to resume. Memory per
//!   subscriber never grows past the buffer (and the WebSocket's bounded write buffer).
//! - Pings every 20 s keep idle connections open through proxies.

mod message;

use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_eventstore::{EventPayload, EventStore, StoredMessage, StreamKind, TailItem, subject};
use tenantry_kit::{ApiError, validate};
use tenantry_proto::orchestration::v1::{
    self as api, orchestration_service_client::OrchestrationServiceClient,
};
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use uuid::Uuid;

/// Close codes of the feed (4000-4999 are the application's).
pub mod close {
    /// No credential, a bad one, or one that expired.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// A credential of another tenant (or without the viewer role).
    pub const FORBIDDEN: u16 = 4403;
    /// The client read too slowly: its buffer filled up.
    pub const TOO_SLOW: u16 = 4008;
    /// The log could not be read; resume with `?after=`.
    pub const UNAVAILABLE: u16 = 1011;
}

#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Messages that may wait for one client before it is dropped as too slow.
    pub buffer: usize,
    /// How long a client without an `Authorization` header has to send its auth message.
    pub auth_timeout: Duration,
    pub ping_every: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            buffer: 256,
            auth_timeout: Duration::from_secs(5),
            ping_every: Duration::from_secs(20),
        }
    }
}

#[derive(Clone)]
struct Feed {
    store: EventStore,
    /// This service's gRPC API on its own port: the credential check.
    own: OrchestrationServiceClient<Channel>,
    config: FeedConfig,
}

pub fn router(store: EventStore, addr: std::net::SocketAddr, config: FeedConfig) -> Router {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
        return Router::new();
    };
    Router::new()
        .route("/api/tenants/{id}/orchestration/events", get(upgrade))
        .with_state(Feed {
            store,
            own: OrchestrationServiceClient::new(endpoint.connect_lazy()),
            config,
        })
}

#[derive(Deserialize)]
struct After {
    after: Option<u64>,
}

#[derive(Deserialize)]
struct AuthMessage {
    #[serde(rename = "type")]
    kind: String,
    token: String,
}

/// The largest message a client may send (its auth message).
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// What the WebSocket may hold unsent beyond the buffer of messages.
const MAX_WRITE_BUFFER: usize = 1 << 20;
/// The socket's read buffer. A client sends at most its auth message and control frames (a
/// larger frame still reads, the buffer growing for it); tungstenite's default, 128 KiB,
/// is zeroed and resident for every socket, most of an idle subscriber's memory.
const READ_BUFFER: usize = 4 * 1024;

async fn upgrade(
    ws: WebSocketUpgrade,
    Path(id): Path<String>,
    Query(after): Query<After>,
    headers: HeaderMap,
    State(feed): State<Feed>,
) -> Response {
    let tenant = match validate::uuid("tenant_id", &id) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let credential = tenantry_kit::auth::bearer(&headers)
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::to_owned);
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| session(socket, feed, tenant, after.after, credential))
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    // A client that does not read may never take the close frame: bounded.
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}

/// The credential from the first message, within the time allowed.
async fn first_message_token(socket: &mut WebSocket, within: Duration) -> Option<String> {
    let message = tokio::time::timeout(within, socket.recv())
        .await
        .ok()??
        .ok()?;
    let Message::Text(text) = message else {
        return None;
    };
    let auth: AuthMessage = serde_json::from_str(text.as_str()).ok()?;
    (auth.kind == "auth" && !auth.token.is_empty()).then_some(auth.token)
}

/// Checks `credential` for `tenant` through the gRPC API; on success, when it expires (an
/// access token's `exp`; an API key has none).
async fn authorize(
    feed: &Feed,
    tenant: Uuid,
    credential: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, (u16, String)> {
    let mut request = tonic::Request::new(api::ListDeploymentsRequest {
        tenant_id: tenant.to_string(),
        min_position: 0,
    });
    let header = if credential.starts_with("tk_") {
        ("x-api-key", credential.to_owned())
    } else {
        ("authorization", format!("Bearer {credential}"))
    };
    let value = header
        .1
        .parse()
        .map_err(|_| (close::UNAUTHENTICATED, "malformed credential".to_owned()))?;
    request.metadata_mut().insert(header.0, value);
    match feed.own.clone().list_deployments(request).await {
        Ok(_) => Ok(message::expiry(credential)),
        Err(s) => Err(match s.code() {
            tonic::Code::Unauthenticated => {
                (close::UNAUTHENTICATED, "invalid credential".to_owned())
            }
            tonic::Code::NotFound | tonic::Code::PermissionDenied => (
                close::FORBIDDEN,
                "this credential may not watch this tenant".to_owned(),
            ),
            _ => (
                close::UNAVAILABLE,
                "could not check the credential; retry".to_owned(),
            ),
        }),
    }
}

async fn session(
    mut socket: WebSocket,
    feed: Feed,
    tenant: Uuid,
    after: Option<u64>,
    credential: Option<String>,
) {
    let credential = match credential {
        Some(c) => c,
        None => match first_message_token(&mut socket, feed.config.auth_timeout).await {
            Some(t) => t,
            None => {
                let reason = format!(
                    "send {{\"type\":\"auth\",\"token\":…}} within {} s",
                    feed.config.auth_timeout.as_secs()
                );
                return close_with(&mut socket, close::UNAUTHENTICATED, &reason).await;
            }
        },
    };
    let expires = match authorize(&feed, tenant, &credential).await {
        Ok(e) => e,
        Err((code, reason)) => return close_with(&mut socket, code, &reason).await,
    };
    let opened = open(&feed.store, tenant, after).await;
    let (start, tail) = match opened {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(tenant_id = %tenant, error = %e, "feed: the log cannot be read");
            return close_with(&mut socket, close::UNAVAILABLE, "the log is unavailable").await;
        }
    };
    let subscribed = serde_json::json!({
        "type": "subscribed",
        "tenant_id": tenant.to_string(),
        "position": start,
    });
    if socket
        .send(Message::Text(subscribed.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let (tx, rx) = mpsc::channel(feed.config.buffer.max(1));
    let (end_tx, end_rx) = oneshot::channel();
    let pump = tokio::spawn(pump(tail, tx, end_tx));
    let outcome = deliver(&mut socket, rx, end_rx, expires, &feed.config).await;
    pump.abort();
    if let Some((code, reason)) = outcome {
        close_with(&mut socket, code, &reason).await;
    }
}

/// The tail of the tenant's deployment events after `after` (or from the log's end).
async fn open(
    store: &EventStore,
    tenant: Uuid,
    after: Option<u64>,
) -> Result<(u64, tenantry_eventstore::Tail<StoredMessage>), ApiError> {
    let start = match after {
        Some(p) => p,
        None => store.last_position().await?,
    };
    let filter = format!(
        "{}.{}.*",
        subject::tenant_filter(store.root(), &tenant.to_string())?.trim_end_matches(".>"),
        DeploymentEvent::AGGREGATE_TYPE
    );
    let tail = store.tail_after(StreamKind::Events, filter, start).await?;
    Ok((start, tail))
}

/// What ends a subscription from the log's side.
#[derive(Debug, PartialEq, Eq)]
pub enum PumpEnd {
    /// The client's buffer was full: it is too slow.
    Overflow,
    /// The log could not be read further.
    Interrupted,
    /// The client is gone.
    Closed,
}

/// One event for the client.
#[derive(Debug)]
pub struct Outgoing {
    pub text: String,
    pub position: u64,
    /// The last event of its log message: once it is sent, the client has all of `position`.
    pub last: bool,
}

/// Messages of the tail into the client's bounded queue; never waits for the client.
async fn pump(
    mut tail: tenantry_eventstore::Tail<StoredMessage>,
    tx: mpsc::Sender<Outgoing>,
    end: oneshot::Sender<PumpEnd>,
) {
    let ended = loop {
        let Some(item) = tail.next().await else {
            break PumpEnd::Interrupted;
        };
        let (position, decoded) = match item {
            TailItem::Message {
                position, decoded, ..
            } => (position, decoded),
            TailItem::Interrupted(why) => {
                tracing::warn!(error = %why, "feed: the tail failed");
                break PumpEnd::Interrupted;
            }
        };
        let texts = match decoded {
            Ok(message) => message::texts(&message),
            Err(e) => {
                tracing::warn!(position, error = %e, "feed: an undecodable message is skipped");
                vec![]
            }
        };
        if let Err(ended) = queue(&tx, texts, position) {
            break ended;
        }
    };
    let _ = end.send(ended);
}

/// Queues one log message's events; `Err` ends the pump.
pub fn queue(
    tx: &mpsc::Sender<Outgoing>,
    texts: Vec<String>,
    position: u64,
) -> Result<(), PumpEnd> {
    let count = texts.len();
    for (i, text) in texts.into_iter().enumerate() {
        let outgoing = Outgoing {
            text,
            position,
            last: i + 1 == count,
        };
        match tx.try_send(outgoing) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(PumpEnd::Overflow),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(PumpEnd::Closed),
        }
    }
    Ok(())
}

/// Sends what the pump queued until the client leaves, the token expires, or the pump ends;
/// returns the close frame to send, if any.
async fn deliver(
    socket: &mut WebSocket,
    mut rx: mpsc::Receiver<Outgoing>,
    mut end: oneshot::Receiver<PumpEnd>,
    expires: Option<chrono::DateTime<chrono::Utc>>,
    config: &FeedConfig,
) -> Option<(u16, String)> {
    let expiry = async {
        match expires {
            Some(at) => {
                let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(left).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval(config.ping_every);
    ping.tick().await;
    // The last position whose every event reached the socket: where a dropped client resumes.
    let mut delivered: u64 = 0;
    let mut ended = None;
    loop {
        tokio::select! {
            () = &mut expiry => {
                return Some((close::UNAUTHENTICATED, "the token expired".into()));
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return None;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(_)) => {}
            },
            why = &mut end, if ended.is_none() => match why {
                // Too slow: closed at once, whatever is still queued.
                Ok(PumpEnd::Overflow) => {
                    return Some((close::TOO_SLOW, format!(
                        "too slow: {} messages waiting; resume with ?after={delivered}",
                        config.buffer
                    )));
                }
                // The log failed: what is queued is still sent, then the socket closes.
                other => ended = Some(other),
            },
            next = rx.recv() => match next {
                Some(out) => {
                    // A client that stops reading blocks this send once the socket's buffers
                    // are full; the pump's overflow still ends it.
                    let send = socket.send(Message::Text(out.text.into()));
                    tokio::pin!(send);
                    let sent = tokio::select! {
                        r = &mut send => r.is_ok(),
                        why = &mut end, if ended.is_none() => {
                            if why == Ok(PumpEnd::Overflow) {
                                return Some((close::TOO_SLOW, format!(
                                    "too slow: {} messages waiting; resume with ?after={delivered}",
                                    config.buffer
                                )));
                            }
                            ended = Some(why);
                            send.await.is_ok()
                        }
                    };
                    if !sent {
                        return None;
                    }
                    if out.last {
                        delivered = out.position;
                    }
                }
                None => {
                    return Some((close::UNAVAILABLE, format!(
                        "the feed was interrupted; resume with ?after={delivered}"
                    )));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests;
