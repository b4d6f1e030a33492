//! A started service answers what every Tenantry server must: gRPC health, reflection listing
//! its API, and `/healthz`, `/readyz`, `/metrics` on the same port.

mod common;

use futures::StreamExt;
use tenantry_testkit::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn health_reflection_and_http_endpoints_share_the_port() {
    let env = TestEnv::new().await;
    let (svc, channel) = common::start_tenant(&env, &env.common()).await;

    // Health needs no token.
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "tenantry.tenant.v1.TenantService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    // Reflection lists the tenant API.
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(response)) = responses.next().await else {
        panic!("no reflection response")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"tenantry.tenant.v1.TenantService".to_string()),
        "{names:?}"
    );

    assert!(
        http_get(svc.addr, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert!(
        http_get(svc.addr, "/readyz")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let metrics = http_get(svc.addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("tenantry_grpc_requests_total"),
        "{metrics}"
    );
}
