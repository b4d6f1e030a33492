//! The WebSocket feed on the service's port: replay after a position then live, every event
//! exactly once across a reconnection; authentication by header or first message; another
//! tenant's token (4403), no credential (4401) and an expired token (4401) refused; a client
//! that stops reading is closed (4008) with where to resume.

mod common;

use std::time::Duration;

use common::{Harness, spec, start, with_token};
use futures::{SinkExt, StreamExt};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1 as api;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A socket to `tenant`'s feed, with `token` in an `Authorization` header if given.
async fn connect(h: &Harness, tenant: Uuid, after: Option<u64>, token: Option<&str>) -> Socket {
    let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
    let mut request = format!(
        "ws://{}/api/tenants/{tenant}/orchestration/events{query}",
        h.svc.addr
    )
    .into_client_request()
    .unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(h.svc.addr).await.unwrap();
    let (ws, response) = tokio_tungstenite::client_async(request, tcp).await.unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The next JSON message (pings skipped); `None` once the socket closed.
async fn next_json(ws: &mut Socket) -> Result<serde_json::Value, Option<(u16, String)>> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s");
        match message {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(None),
        }
    }
}

async fn subscribed(ws: &mut Socket) -> u64 {
    let first = next_json(ws).await.unwrap();
    assert_eq!(first["type"], "subscribed", "{first}");
    first["position"].as_u64().unwrap()
}

async fn command(h: &Harness, tenant: Uuid, id: &str, drain: bool) -> u64 {
    let token = h.token(tenant, Role::Member);
    let mut c = h.client();
    let response = if drain {
        c.drain(with_token(
            api::DrainRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.into(),
                reason: "maintenance".into(),
            },
            &token,
        ))
        .await
    } else {
        c.resume(with_token(
            api::ResumeRequest {
                tenant_id: tenant.to_string(),
                deployment_id: id.into(),
            },
            &token,
        ))
        .await
    };
    response.unwrap().into_inner().position
}

#[tokio::test]
async fn the_feed_replays_after_a_position_then_goes_live_and_a_reconnection_sees_each_event_once()
{
    let h = start().await;
    let tenant = h.tenant(1).await;
    // Replicas 0: the lifecycle's events without running anything.
    let provisioned = h.provision(tenant, spec(0)).await.unwrap();
    let id = provisioned.deployment_id.clone();
    let viewer = h.token(tenant, Role::Viewer);

    let mut ws = connect(&h, tenant, Some(0), Some(&viewer)).await;
    assert_eq!(subscribed(&mut ws).await, 0);
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(first["type"], "deployment.provisioned");
    assert_eq!(first["tenant_id"], tenant.to_string());
    assert_eq!(first["deployment_id"], id);
    assert_eq!(first["position"], provisioned.position);
    assert_eq!(first["data"]["spec"]["version"], "1.0.0");
    assert!(first["at"].as_str().unwrap().contains('T'));
    // Live.
    let drained = command(&h, tenant, &id, true).await;
    let live = next_json(&mut ws).await.unwrap();
    assert_eq!(
        (live["type"].as_str(), live["position"].as_u64()),
        (Some("deployment.drained"), Some(drained))
    );
    let mut seen = vec![live["position"].as_u64().unwrap()];
    drop(ws);

    // Events while away, then a reconnection after the last position seen.
    let mut expected = vec![drained];
    for i in 0..4 {
        expected.push(command(&h, tenant, &id, i % 2 == 1).await);
    }
    let mut ws = connect(&h, tenant, Some(drained), Some(&viewer)).await;
    subscribed(&mut ws).await;
    // And more while the replay is being read.
    let more = command(&h, tenant, &id, false).await;
    expected.push(more);
    while seen.len() < expected.len() {
        let event = next_json(&mut ws).await.unwrap();
        seen.push(event["position"].as_u64().unwrap());
    }
    assert_eq!(seen, expected, "every event once, in order");
    // Nothing more.
    let extra = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(extra.is_err(), "{extra:?}");
}

#[tokio::test]
async fn a_browser_authenticates_with_its_first_message_and_other_tenants_or_no_token_are_refused()
{
    let h = start().await;
    let a = h.tenant(1).await;
    let b = h.tenant(1).await;

    // First message, as the seed's browser client does; a viewer may watch.
    let mut ws = connect(&h, a, None, None).await;
    let auth = serde_json::json!({"type": "auth", "token": h.token(a, Role::Viewer)});
    ws.send(Message::text(auth.to_string())).await.unwrap();
    subscribed(&mut ws).await;
    let provisioned = h.provision(a, spec(0)).await.unwrap();
    let event = next_json(&mut ws).await.unwrap();
    assert_eq!(event["position"], provisioned.position);

    // B's owner on A's feed, by header or by message: 4403.
    let b_owner = h.token(b, Role::Owner);
    let mut ws = connect(&h, a, Some(0), Some(&b_owner)).await;
    let closed = next_json(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(closed.0, 4403, "{closed:?}");
    let mut ws = connect(&h, a, Some(0), None).await;
    let auth = serde_json::json!({"type": "auth", "token": b_owner});
    ws.send(Message::text(auth.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap_err().unwrap().0, 4403);

    // No credential in time (the harness allows 500 ms): 4401; a forged one: 4401.
    let mut ws = connect(&h, a, Some(0), None).await;
    let closed = next_json(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(closed.0, 4401, "{closed:?}");
    assert!(closed.1.contains("auth"), "{closed:?}");
    let mut ws = connect(&h, a, Some(0), Some("not-a-token")).await;
    assert_eq!(next_json(&mut ws).await.unwrap_err().unwrap().0, 4401);
}

#[tokio::test]
async fn an_expired_token_closes_the_socket() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let mut claims = h.env.claims(Some(tenant), Role::Viewer);
    claims.exp = chrono::Utc::now().timestamp() + 2;
    let token = h.env.key.sign(&claims).unwrap();
    let mut ws = connect(&h, tenant, None, Some(&token)).await;
    subscribed(&mut ws).await;
    let closed = next_json(&mut ws).await.unwrap_err().unwrap();
    assert_eq!(closed, (4401, "the token expired".into()));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_where_to_resume() {
    let h = start().await;
    let tenant = h.tenant(1).await;
    let id = h.provision(tenant, spec(0)).await.unwrap().deployment_id;
    let mut ws = connect(&h, tenant, None, Some(&h.token(tenant, Role::Viewer))).await;
    subscribed(&mut ws).await;
    // Large events (as the reconciler could write them), more than the socket's buffers and
    // the feed's (8 in the harness) hold; the client reads none of them for now.
    let store = h.env.event_store().await;
    let big = "x".repeat(200_000);
    for _ in 0..60 {
        let event = DeploymentEvent::HealthChanged(pb::HealthChanged {
            instance_id: "i".into(),
            healthy: false,
            detail: big.clone(),
        });
        tenantry_testkit::append(&store, &tenant.to_string(), &id, event)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut received = 0;
    let closed = loop {
        match next_json(&mut ws).await {
            Ok(_) => received += 1,
            Err(frame) => break frame,
        }
    };
    let (code, reason) = closed.expect("a close frame");
    assert_eq!(code, 4008, "{reason}");
    assert!(reason.starts_with("too slow"), "{reason}");
    assert!(reason.contains("resume with ?after="), "{reason}");
    assert!(received < 60, "dropped before the end: {received}");
}
