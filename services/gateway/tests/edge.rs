//! Edge hardening: slow or oversized requests are cut off, and overload sheds load with 503.

mod common;

use std::time::{Duration, Instant};

use common::{Upstream, route, start_with};
use tenantry_proto::events::v1::BalanceAlgorithm;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `head` on a fresh connection and reads what comes back until the gateway closes.
async fn raw(addr: std::net::SocketAddr, head: &[u8]) -> (String, Duration) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    tcp.write_all(head).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_within_the_header_timeout() {
    let h = start_with(|c| c.header_timeout_ms = 500).await;
    let (answer, took) = raw(
        h.gateway.data_addr,
        b"GET / HTTP/1.1\r\nHost: slow.localhost\r\nX-Slow: 1",
    )
    .await;
    assert!(took < Duration::from_millis(1500), "closed after {took:?}");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test]
async fn oversized_headers_get_431_and_oversized_bodies_413() {
    let h = start_with(|c| c.max_body_bytes = 1000).await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;

    let big = "x".repeat(100 * 1024);
    let head = format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Big: {big}\r\n\r\n", t.host);
    let (answer, _) = raw(h.gateway.data_addr, head.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    let c = h.client(&t.host);
    let ok = c
        .post(h.url(&t.host, "/echo"))
        .body(vec![b'a'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1000");
    let declared = c
        .post(h.url(&t.host, "/echo"))
        .body(vec![b'a'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    // Chunked, so no length to check up front: cut off while streaming.
    let chunk = "b".repeat(3000);
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        t.host,
        chunk.len()
    );
    let (answer, _) = raw(h.gateway.data_addr, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn past_the_in_flight_limit_the_gateway_sheds_load_with_503() {
    let h = start_with(|c| c.max_in_flight = 2).await;
    let t = h.tenant().await;
    let slow = Upstream::start_with("slow", Duration::from_millis(400)).await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&slow, 1)]))
        .await;
    let c = h.client(&t.host);
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (c, url) = (c.clone(), h.url(&t.host, "/"));
            tokio::spawn(async move { c.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 503, 503, 503, 503], "{statuses:?}");
}

#[tokio::test]
async fn a_websocket_passes_through_and_a_silent_backend_gets_504() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let h = start_with(|c| c.upstream_timeout_ms = 300).await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/ws", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let slow = Upstream::start_with("slow", Duration::from_secs(2)).await;
    h.route(
        &t,
        route("/slow", BalanceAlgorithm::RoundRobin, &[(&slow, 1)]),
    )
    .await;

    let request = format!("ws://{}:{}/ws", t.host, h.gateway.data_addr.port())
        .into_client_request()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(h.gateway.data_addr)
        .await
        .unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("upgrade through the gateway");
    assert_eq!(response.status(), 101);
    for text in ["hello", "tenantry"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }

    let r = h
        .client(&t.host)
        .get(h.url(&t.host, "/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(r.text().await.unwrap().contains("upstream_timeout"));
}
