//! Item 3, connections held for free: a client that sends nothing or half an HTTP/2 preface,
//! an HTTP/2 connection that asks nothing or goes idle, and connection floods, on the data
//! plane and on the API port (the kit's `serve`, as every service's port).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::common::{Upstream, route, start_with, start_with_common};
use super::support::{RR, closed_within_5s};

/// An HTTP/1.1 connection to `addr` that has been served a request (so the server let it in),
/// kept open; `None` if the server closed it without an answer.
async fn served_connection(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
) -> Option<(
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<()>,
)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.ok()?;
    let _ = response.into_body().collect().await;
    Some((sender, task))
}

/// Opens connections to `addr` and keeps them: at most `cap` are served (fewer when the test's
/// own clients hold some), the next is closed unanswered; once one closes, a new one is served.
async fn assert_capped(addr: std::net::SocketAddr, host: &str, path: &str, cap: usize) {
    let mut open = Vec::new();
    loop {
        match served_connection(addr, host, path).await {
            Some(connection) => open.push(connection),
            None => break,
        }
        assert!(
            open.len() <= cap,
            "{} connections from one client served, the cap is {cap}",
            open.len()
        );
    }
    assert!(!open.is_empty(), "no connection served at all");
    // One goes: its place is free again.
    let (sender, task) = open.pop().unwrap();
    drop(sender);
    task.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while served_connection(addr, host, path).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "a freed place is not given again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn attack_a_connection_that_sends_nothing_is_closed_within_the_header_timeout() {
    let h = start_with(|c| c.header_timeout_ms = 300).await;
    let mut silent = TcpStream::connect(h.gateway.data_addr).await.unwrap();
    assert!(
        closed_within_5s(&mut silent).await.is_some(),
        "a connection that sent nothing is still open after 5 s"
    );
}

#[tokio::test]
async fn attack_half_an_http2_preface_is_closed_within_the_header_timeout() {
    let h = start_with(|c| c.header_timeout_ms = 300).await;
    let mut half = TcpStream::connect(h.gateway.data_addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(
        closed_within_5s(&mut half).await.is_some(),
        "half a preface holds the connection open"
    );
}

#[tokio::test]
async fn attack_an_http2_connection_that_never_asks_anything_is_closed() {
    let h = start_with(|c| c.header_timeout_ms = 300).await;
    let mut quiet = TcpStream::connect(h.gateway.data_addr).await.unwrap();
    // The whole preface and an empty SETTINGS frame, then nothing.
    quiet
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    assert!(
        closed_within_5s(&mut quiet).await.is_some(),
        "an HTTP/2 connection without a request is still open after 5 s"
    );
}

#[tokio::test]
async fn attack_an_idle_http2_connection_is_closed() {
    let h = start_with(|c| {
        c.header_timeout_ms = 300;
        c.idle_timeout_ms = 300;
    })
    .await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let tcp = TcpStream::connect(h.gateway.data_addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    let mut connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/", t.host))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await;
    // Then nothing: the gateway ends the connection (GOAWAY).
    assert!(
        tokio::time::timeout(Duration::from_secs(5), &mut connection)
            .await
            .is_ok(),
        "an idle HTTP/2 connection is still open after 5 s"
    );
}

#[tokio::test]
async fn attack_a_connection_flood_from_one_address_is_capped() {
    let h = start_with(|c| c.max_connections_per_client = 3).await;
    assert_capped(h.gateway.data_addr, "nobody.localhost", "/", 3).await;
}

#[tokio::test]
async fn attack_a_connection_flood_is_capped_per_gateway() {
    let h = start_with(|c| {
        c.max_connections = 2;
        c.max_connections_per_client = 100;
    })
    .await;
    assert_capped(h.gateway.data_addr, "nobody.localhost", "/", 2).await;
}

#[tokio::test]
async fn attack_a_connection_that_sends_nothing_to_the_api_port_is_closed() {
    let h = start_with_common(|c| c.server.header_timeout_ms = 300, |_| {}).await;
    let mut silent = TcpStream::connect(h.gateway.addr).await.unwrap();
    assert!(
        closed_within_5s(&mut silent).await.is_some(),
        "a silent connection to the API port is still open after 5 s"
    );
}

#[tokio::test]
async fn attack_a_connection_flood_on_the_api_port_is_capped() {
    let h = start_with_common(|c| c.server.max_connections_per_client = 3, |_| {}).await;
    assert_capped(h.gateway.addr, "localhost", "/healthz", 3).await;
}
