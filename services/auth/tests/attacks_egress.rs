//! Attacks through a tenant's identity provider settings (issue 17, item 1): the auth service
//! fetches discovery documents, key sets and tokens from URLs a tenant names, so those fetches
//! must not reach the platform's network, must not read unbounded answers, and must not hand
//! what they read back in errors.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Harness, allow_loopback, start_with_common, with_token};
use serde_json::json;
use tenantry_proto::auth::v1 as api;
use tonic::Code;
use uuid::Uuid;

/// A server standing in for an internal service: every path answers `body(its address)`,
/// counted.
async fn internal(body: impl FnOnce(SocketAddr) -> String) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = body(addr);
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let body = body.clone();
        async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// A discovery document naming `issuer`.
fn discovery(issuer: &str) -> String {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "code_challenge_methods_supported": ["S256"],
    })
    .to_string()
}

async fn configure(h: &Harness, issuer: &str) -> Result<(), tonic::Status> {
    let owner = h.member(Uuid::now_v7(), api::Role::Owner).await;
    h.providers()
        .configure_oidc_provider(with_token(
            api::ConfigureOidcProviderRequest {
                preset: "keycloak".into(),
                issuer: issuer.into(),
                client_id: "tenantry".into(),
                client_secret: "secret".into(),
                scopes: vec!["openid".into()],
                redirect_uris: vec!["http://127.0.0.1:1/callback".into()],
                ..Default::default()
            },
            Some(&owner.token),
        ))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn attack_oidc_discovery_of_a_loopback_issuer_is_refused_by_default() {
    // Internal services that answer as providers would: reachable, they would be accepted.
    let h = start_with_common(
        |_| {},
        |_| {},
        std::sync::Arc::new(tenantry_kit::SystemClock),
    )
    .await;
    let by_address = internal(|a| discovery(&format!("http://{a}"))).await;
    let by_name = internal(|a| discovery(&format!("http://localhost:{}", a.port()))).await;
    for issuer in [
        format!("http://{}", by_address.0),
        format!("http://localhost:{}", by_name.0.port()),
        "http://169.254.169.254".to_owned(),
    ] {
        let e = configure(&h, &issuer).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{issuer}: {e:?}");
        assert!(e.message().starts_with("issuer"), "{}", e.message());
    }
    assert_eq!(by_address.1.load(Ordering::SeqCst), 0, "never contacted");
    assert_eq!(by_name.1.load(Ordering::SeqCst), 0, "never contacted");
}

#[tokio::test]
async fn attack_oidc_discovery_on_the_auth_services_own_port_is_refused_with_loopback_allowed() {
    let h = start_with_common(
        allow_loopback,
        |_| {},
        std::sync::Arc::new(tenantry_kit::SystemClock),
    )
    .await;
    let e = configure(&h, &format!("http://{}", h.svc.addr))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("issuer"), "{}", e.message());
}

#[tokio::test]
async fn attack_oidc_discovery_errors_do_not_reflect_what_the_url_answered() {
    // An internal JSON endpoint (loopback allowed, as for a provider on the same host) whose
    // answer the attacker wants to read through the error message.
    let h = start_with_common(
        allow_loopback,
        |_| {},
        std::sync::Arc::new(tenantry_kit::SystemClock),
    )
    .await;
    let secret = "internal-secret-4f9a";
    for body in [
        discovery(secret),
        json!({"issuer": 7, "token": secret}).to_string(),
        format!("not json {secret}"),
    ] {
        let (addr, hits) = internal(|_| body).await;
        let e = configure(&h, &format!("http://{addr}")).await.unwrap_err();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(!e.message().contains(secret), "reflected: {}", e.message());
    }
}

#[tokio::test]
async fn attack_an_oversized_oidc_discovery_document_is_not_read() {
    let h = start_with_common(
        allow_loopback,
        |_| {},
        std::sync::Arc::new(tenantry_kit::SystemClock),
    )
    .await;
    // A valid document behind 8 MiB of blanks: read whole it would parse and be accepted.
    let (addr, _) = internal(|a| {
        format!(
            "{}{}",
            " ".repeat(8 * 1024 * 1024),
            discovery(&format!("http://{a}"))
        )
    })
    .await;
    let issuer = format!("http://{addr}");
    let e = configure(&h, &issuer).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("larger than"), "{}", e.message());
}
