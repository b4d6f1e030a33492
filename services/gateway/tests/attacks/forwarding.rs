//! Item 12, forwarded-host poisoning: an absolute-form request's `Host`, and forwarding headers
//! a client forges.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::common::{self, Upstream, route, start, start_with};
use super::support::{RR, closed_within_5s};

#[tokio::test]
async fn attack_an_absolute_form_request_cannot_poison_x_forwarded_host() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let authority = format!("{}:{}", t.host, h.gateway.data_addr.port());
    let mut tcp = TcpStream::connect(h.gateway.data_addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET http://{authority}/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = closed_within_5s(&mut tcp).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("xfh={authority} ")) && !answer.contains("evil.example"),
        "the backend is told another host than the one routed: {answer}"
    );
}

/// What the upstream saw of a request sent with forged forwarding headers.
async fn forged(h: &common::Harness, t: &common::Tenant) -> String {
    common::text_of(
        h.client(&t.host)
            .get(h.url(&t.host, "/"))
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "for=6.6.6.6;host=evil.example")
            .header("x-real-ip", "6.6.6.6")
            .header("true-client-ip", "6.6.6.6"),
    )
    .await
}

#[tokio::test]
async fn attack_forwarding_headers_from_an_untrusted_client_are_dropped() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let seen = forged(&h, &t).await;
    assert!(!seen.contains("6.6.6.6"), "{seen}");
    assert!(!seen.contains("evil.example"), "{seen}");
    assert!(seen.contains("xff=127.0.0.1 "), "{seen}");
    assert!(seen.contains("xfp=http "), "{seen}");
    assert!(seen.contains("real= tci="), "{seen}");
}

#[tokio::test]
async fn a_trusted_proxys_forwarding_headers_are_kept_and_appended_to() {
    let h = start_with(|c| c.trusted_proxies = "127.0.0.0/8".parse().unwrap()).await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let seen = forged(&h, &t).await;
    assert!(seen.contains("xff=6.6.6.6, 127.0.0.1 "), "{seen}");
    assert!(seen.contains("xfh=evil.example "), "{seen}");
    assert!(seen.contains("xfp=https "), "{seen}");
    assert!(
        seen.contains(&format!(
            "fwd=for=6.6.6.6;host=evil.example, for=127.0.0.1;host={};proto=http ",
            t.host
        )),
        "{seen}"
    );
    assert!(seen.contains("real=6.6.6.6 tci=6.6.6.6"), "{seen}");
}

#[tokio::test]
async fn attack_forwarding_headers_forged_through_the_api_edge_are_dropped() {
    // A stand-in for the tenant service behind the edge, echoing what it is told.
    let service = Upstream::start("service").await;
    let h = start_with(|c| c.services = format!("tenant={}", service.addr)).await;
    let seen = common::text_of(
        reqwest::Client::new()
            .post(format!(
                "http://{}/tenantry.tenant.v1.TenantService/GetTenant",
                h.gateway.addr
            ))
            .header("content-type", "application/grpc")
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-real-ip", "6.6.6.6")
            .header("true-client-ip", "6.6.6.6"),
    )
    .await;
    assert!(seen.starts_with("service /tenantry.tenant.v1."), "{seen}");
    assert!(
        !seen.contains("6.6.6.6"),
        "the service is told a forged client address: {seen}"
    );
    assert!(seen.contains("xff=127.0.0.1 "), "{seen}");
}
