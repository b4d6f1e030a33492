//! Per-route metrics on the API port: body bytes in and out, and the route's backends by state.

mod common;

use std::time::{Duration, Instant};

use common::{Upstream, metric_value as value, route, start};
use tenantry_proto::events::v1::BalanceAlgorithm;

/// Posts `len` bytes to `/echo` through the gateway; the answer is the length it got.
async fn upload(client: &reqwest::Client, url: &str, len: usize) -> String {
    let echoed = client.post(url).body(vec![b'x'; len]).send().await.unwrap();
    assert_eq!(echoed.status(), 200);
    echoed.text().await.unwrap()
}

#[tokio::test]
async fn bytes_and_backend_states_are_published_per_tenant_and_route() {
    let h = start().await;
    let t = h.tenant().await;
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let r = h
        .route(
            &t,
            route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1), (&b, 1)]),
        )
        .await;
    // Another tenant's traffic through the same gateway is counted under its own labels only.
    let other = h.tenant().await;
    h.route(&other, route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1)]))
        .await;
    let oc = h.client(&other.host);
    for _ in 0..3 {
        assert_eq!(
            upload(&oc, &h.url(&other.host, "/echo"), 1000).await,
            "1000"
        );
    }

    // Four uploads of 100 bytes; `/echo` answers with the length it got ("100": 3 bytes).
    let c = h.client(&t.host);
    for _ in 0..4 {
        assert_eq!(upload(&c, &h.url(&t.host, "/echo"), 100).await, "100");
    }
    // And a response of no declared length (chunked, 7 bytes), counted as it streams.
    let streamed = c.get(h.url(&t.host, "/stream")).send().await.unwrap();
    assert!(streamed.content_length().is_none());
    assert_eq!(streamed.text().await.unwrap(), "abcdefg");
    // One backend drained, the other down: its failures eject it.
    h.drain(&t, &r.route_id, b.addr).await;
    a.kill();
    for _ in 0..3 {
        let failed = c.get(h.url(&t.host, "/")).send().await.unwrap();
        assert_eq!(failed.status(), 502);
    }

    let (tenant, route_id) = (
        format!("tenant_id=\"{}\"", t.id),
        format!("route=\"{}\"", r.route_id),
    );
    let labels = |extra: &'static str| [tenant.as_str(), route_id.as_str(), extra];
    // Published once a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let metrics = h.metrics().await;
        let unhealthy = value(
            &metrics,
            "tenantry_gateway_route_backends",
            &labels("state=\"unhealthy\""),
        );
        if unhealthy == Some(1.0) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "unhealthy {unhealthy:?}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let bytes = |direction: &'static str| {
        value(&metrics, "tenantry_gateway_bytes_total", &labels(direction))
    };
    assert_eq!(bytes("direction=\"in\""), Some(400.0), "{metrics}");
    // Four answers of 3 bytes, the streamed 7, and the gateway's own three 502 bodies.
    let bad_gateway = r#"{"error":"bad_gateway"}"#.len() as f64;
    assert_eq!(
        bytes("direction=\"out\""),
        Some(4.0 * 3.0 + 7.0 + 3.0 * bad_gateway),
        "{metrics}"
    );
    let state = |s: &'static str| value(&metrics, "tenantry_gateway_route_backends", &labels(s));
    assert_eq!(state("state=\"healthy\""), Some(0.0), "{metrics}");
    assert_eq!(state("state=\"drained\""), Some(1.0), "{metrics}");

    // The other tenant's bytes are its own.
    let theirs = format!("tenant_id=\"{}\"", other.id);
    assert_eq!(
        value(
            &metrics,
            "tenantry_gateway_bytes_total",
            &[theirs.as_str(), "direction=\"in\""]
        ),
        Some(3000.0),
        "{metrics}"
    );
}
