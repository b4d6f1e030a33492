//! Item 4, one tenant can 503 everyone: a backend that never answers, a plan's share, slow
//! request bodies, and WebSocket tunnels (in flight, in usage, idle).

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tenantry_gateway::domain::events::SubscriptionEvent;
use tenantry_proto::events::v1 as pb;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::common::{self, Upstream, route, start, start_with};
use super::support::{RR, head_within_5s, usage_of};

#[tokio::test]
async fn attack_a_tenant_whose_backend_never_answers_cannot_take_every_slot() {
    let h = start_with(|c| {
        c.max_in_flight = 6;
        c.tenant_max_in_flight = 3;
        c.upstream_timeout_ms = 20_000;
    })
    .await;
    let (attacker, victim) = (h.tenant().await, h.tenant().await);
    let silent = Upstream::start_with("silent", Duration::from_secs(30)).await;
    let fine = Upstream::start("fine").await;
    h.route(&attacker, route("/", RR, &[(&silent, 1)])).await;
    h.route(&victim, route("/", RR, &[(&fine, 1)])).await;

    let c = h.client(&attacker.host);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (c, url) = (c.clone(), h.url(&attacker.host, "/"));
        calls.spawn(async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
    }
    // Past its share, the attacker's requests are refused at once; the rest hang.
    let mut refused = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(answer) = calls.join_next().await {
            refused.push(answer.unwrap());
            if refused.len() == 3 {
                break;
            }
        }
    })
    .await;
    let r = h
        .client(&victim.host)
        .get(h.url(&victim.host, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "another tenant is shed: {}",
        r.text().await.unwrap()
    );
    assert_eq!(refused.len(), 3, "{refused:?}");
    for (status, body) in &refused {
        assert_eq!(*status, 503);
        assert!(body.contains("tenant_overloaded"), "{body}");
    }
}

#[tokio::test]
async fn attack_a_tenant_past_its_plans_in_flight_share_is_refused() {
    let h = start_with(|c| c.upstream_timeout_ms = 3_000).await;
    let t = h.tenant().await;
    let silent = Upstream::start_with("silent", Duration::from_secs(30)).await;
    h.route(&t, route("/", RR, &[(&silent, 1)])).await;
    h.billing(
        &t,
        SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            plan: "tiny".into(),
            max_in_flight: 1,
            ..Default::default()
        }),
    )
    .await;
    let c = h.client(&t.host);
    let first = tokio::spawn({
        let (c, url) = (c.clone(), h.url(&t.host, "/"));
        async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while silent.hits() == 0 {
        assert!(
            Instant::now() < deadline,
            "the first request never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = c.get(h.url(&t.host, "/")).send().await.unwrap();
    assert_eq!(second.status(), 503);
    assert!(second.text().await.unwrap().contains("tenant_overloaded"));
    first.abort();
}

#[tokio::test]
async fn attack_slow_request_bodies_are_cut_off_and_give_their_slots_back() {
    let h = start_with(|c| {
        c.body_timeout_ms = 300;
        c.max_in_flight = 2;
        c.upstream_timeout_ms = 30_000;
    })
    .await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    // Two clients promise 100 bytes, send 10 and stall: every slot of the gateway.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(h.gateway.data_addr).await.unwrap();
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n0123456789",
            t.host
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        slow.push(tcp);
    }
    for tcp in &mut slow {
        let answer = head_within_5s(tcp).await;
        assert!(
            answer
                .as_deref()
                .is_some_and(|a| a.starts_with("HTTP/1.1 408")),
            "a stalled body still holds its request: {answer:?}"
        );
    }
    let r = h
        .client(&t.host)
        .get(h.url(&t.host, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A WebSocket to `t`'s `/ws` through the gateway, echoed by the upstream.
async fn websocket(
    h: &common::Harness,
    t: &common::Tenant,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let request = format!("ws://{}:{}/ws", t.host, h.gateway.data_addr.port())
        .into_client_request()
        .unwrap();
    let tcp = TcpStream::connect(h.gateway.data_addr).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("upgrade through the gateway");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_text().unwrap().as_str(), "hello");
    ws
}

#[tokio::test]
async fn attack_websocket_tunnels_count_against_the_tenants_in_flight_share() {
    let h = start_with(|c| c.tenant_max_in_flight = 1).await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let ws = websocket(&h, &t).await;
    let c = h.client(&t.host);
    let r = c.get(h.url(&t.host, "/")).send().await.unwrap();
    assert_eq!(r.status(), 503, "an open tunnel is not counted in flight");
    assert!(r.text().await.unwrap().contains("tenant_overloaded"));
    // Closed, it gives its place back.
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.get(h.url(&t.host, "/")).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "a closed tunnel keeps its place");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn attack_websocket_traffic_counts_in_the_tenants_usage() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let mut ws = websocket(&h, &t).await;
    let payload = "x".repeat(1000);
    for _ in 0..5 {
        ws.send(Message::text(payload.clone())).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().len(), 1000);
    }
    drop(ws);
    let store = h.env.event_store().await;
    let (total, _) = usage_of(store.jetstream(), store.names(), t.id, |u| {
        u.bytes_in >= 5000 && u.bytes_out >= 5000
    })
    .await;
    assert!(
        total.bytes_in >= 5000 && total.bytes_out >= 5000,
        "5,000 bytes each way through the tunnel, usage says {total:?}"
    );
}

#[tokio::test]
async fn attack_an_idle_websocket_tunnel_is_closed() {
    let h = start_with(|c| c.tunnel_idle_timeout_ms = 300).await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let mut ws = websocket(&h, &t).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(
        matches!(ended, Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_))))),
        "an idle tunnel is still open after 5 s: {ended:?}"
    );
}
