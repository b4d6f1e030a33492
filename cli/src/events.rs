//! `tenantry events --tenant <id>`: follows a tenant's orchestration feed (the WebSocket at
//! `/api/tenants/{id}/orchestration/events`) and prints each event as it happens.
//!
//! A dropped connection (or the feed closing a client that fell behind, 4008) is resumed
//! with `?after=` the last position printed, so every event is printed once; a refused
//! credential (4401, 4403) ends the command with an error.

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The orchestration service's own port: the feed is not on the gateway's API edge yet.
pub const DEFAULT_FEED_ENDPOINT: &str = "http://127.0.0.1:7004";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per event: time, type, deployment, its data.
    #[default]
    Text,
    /// The feed's JSON messages, one per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// The tenant whose deployments' events to follow.
    #[arg(long)]
    pub tenant: String,
    /// Replay the events after this log position first (0: the whole history); without it,
    /// only what happens from now on.
    #[arg(long)]
    pub after: Option<u64>,
    /// Exit after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// The orchestration service's HTTP address.
    #[arg(
        long,
        env = "TENANTRY_ORCHESTRATION_ENDPOINT",
        default_value = DEFAULT_FEED_ENDPOINT
    )]
    pub endpoint: String,
    /// Bearer token (a viewer of the tenant at least).
    #[arg(long, env = "TENANTRY_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("--endpoint {0:?}: expected http://host:port (wss is not supported)")]
    Endpoint(String),
    #[error("--tenant {0:?}: expected a tenant id")]
    Tenant(String),
    /// The feed refused the credential (4401) or the tenant (4403).
    #[error("the feed closed the connection: {code} {reason}")]
    Refused { code: u16, reason: String },
    #[error("write: {0}")]
    Write(#[from] std::io::Error),
}

/// The feed's URL for `args`, resuming after `after`.
fn url(args: &EventsArgs, after: Option<u64>) -> Result<String, EventsError> {
    let endpoint = args.endpoint.trim_end_matches('/');
    let host = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("ws://"))
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .ok_or_else(|| EventsError::Endpoint(args.endpoint.clone()))?;
    let mut url = format!(
        "ws://{host}/api/tenants/{}/orchestration/events",
        args.tenant
    );
    if let Some(after) = after {
        url.push_str(&format!("?after={after}"));
    }
    Ok(url)
}

/// One event as a line of text: `<at> <type> <deployment> <data>`.
fn line(message: &Value) -> String {
    let field = |k: &str| message.get(k).and_then(Value::as_str).unwrap_or("-");
    format!(
        "{} {} {} {}",
        field("at"),
        field("type"),
        field("deployment_id"),
        message.get("data").cloned().unwrap_or(Value::Null)
    )
}

/// How one connection ended.
enum Ended {
    /// Printed `limit` events.
    Done,
    /// Closed or dropped: resume after the last position.
    Lost(String),
}

/// Follows the feed until `limit` events were printed (or forever), writing to `out`.
pub async fn follow(args: &EventsArgs, out: &mut (impl Write + Send)) -> Result<(), EventsError> {
    if uuid::Uuid::try_parse(&args.tenant).is_err() {
        return Err(EventsError::Tenant(args.tenant.clone()));
    }
    url(args, None)?;
    let mut after = args.after;
    let mut printed = 0u64;
    let mut backoff = Duration::from_millis(250);
    loop {
        match connection(args, &mut after, &mut printed, out).await? {
            Ended::Done => return Ok(()),
            Ended::Lost(why) => {
                eprintln!("feed lost ({why}); resuming in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn connection(
    args: &EventsArgs,
    after: &mut Option<u64>,
    printed: &mut u64,
    out: &mut (impl Write + Send),
) -> Result<Ended, EventsError> {
    let mut request = url(args, *after)?
        .into_client_request()
        .map_err(|_| EventsError::Endpoint(args.endpoint.clone()))?;
    let bearer = format!("Bearer {}", args.token);
    let Ok(value) = bearer.parse() else {
        return Err(EventsError::Refused {
            code: 4401,
            reason: "the token is not a valid header value".into(),
        });
    };
    request.headers_mut().insert("authorization", value);
    let host = url(args, None)?
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let tcp = match tokio::net::TcpStream::connect(&host).await {
        Ok(tcp) => tcp,
        Err(e) => return Ok(Ended::Lost(format!("connect {host}: {e}"))),
    };
    let (mut ws, _) = match tokio_tungstenite::client_async(request, tcp).await {
        Ok(connected) => connected,
        Err(e) => return Ok(Ended::Lost(e.to_string())),
    };
    while let Some(message) = ws.next().await {
        let message = match message {
            Ok(m) => m,
            Err(e) => return Ok(Ended::Lost(e.to_string())),
        };
        let text = match message {
            Message::Text(text) => text,
            Message::Ping(payload) => {
                let _ = ws.send(Message::Pong(payload)).await;
                continue;
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((u16::from(CloseCode::Normal), String::new()));
                if matches!(code, 4401 | 4403) {
                    return Err(EventsError::Refused { code, reason });
                }
                return Ok(Ended::Lost(format!("closed {code} {reason}")));
            }
            _ => continue,
        };
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let position = value.get("position").and_then(Value::as_u64);
        if value.get("type").and_then(Value::as_str) == Some("subscribed") {
            // Without `--after`, a reconnection resumes where this subscription began.
            if after.is_none() {
                *after = position;
            }
            continue;
        }
        match args.output {
            Format::Json => writeln!(out, "{text}")?,
            Format::Text => writeln!(out, "{}", line(&value))?,
        }
        out.flush()?;
        if let Some(p) = position {
            *after = Some(p);
        }
        *printed += 1;
        if args.limit.is_some_and(|limit| *printed >= limit) {
            let _ = ws.close(None).await;
            return Ok(Ended::Done);
        }
    }
    Ok(Ended::Lost("the connection ended".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoint: &str) -> EventsArgs {
        EventsArgs {
            tenant: "0190a5b2-0000-7000-8000-000000000001".into(),
            after: None,
            limit: None,
            output: Format::Text,
            endpoint: endpoint.into(),
            token: "t".into(),
        }
    }

    #[test]
    fn the_feed_url_is_the_endpoint_with_the_tenant_and_where_to_resume() {
        assert_eq!(
            url(&args("http://127.0.0.1:7004/"), Some(42)).unwrap(),
            "ws://127.0.0.1:7004/api/tenants/0190a5b2-0000-7000-8000-000000000001/orchestration/events?after=42"
        );
        assert!(url(&args("https://example.com"), None).is_err());
        assert!(url(&args("http://host/path"), None).is_err());
    }

    #[test]
    fn a_text_line_has_the_time_type_deployment_and_data() {
        let message = serde_json::json!({
            "type": "pod.created", "at": "2026-01-01T00:00:00Z", "deployment_id": "d1",
            "position": 7, "data": {"instance_id": "i1"},
        });
        assert_eq!(
            line(&message),
            r#"2026-01-01T00:00:00Z pod.created d1 {"instance_id":"i1"}"#
        );
    }
}
