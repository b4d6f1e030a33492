//! The outbound HTTP client against real local servers: the policy on every address it
//! reaches, redirects kept to the URL's host, capped answers, no answer in its errors.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use tenantry_kit::egress::{
    Egress, EgressPolicy, HttpLimits, OutboundError, OutboundHttp, StaticResolver,
};

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn loopback_allowed() -> EgressPolicy {
    EgressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![])
}

fn client(policy: EgressPolicy, resolver: StaticResolver, max_body_bytes: usize) -> OutboundHttp {
    let egress = Arc::new(Egress::new(policy, Arc::new(resolver)));
    OutboundHttp::new(
        egress,
        HttpLimits {
            max_body_bytes,
            ..HttpLimits::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn loopback_is_refused_unless_allowed_by_address_or_by_name() {
    let addr = serve(axum::Router::new().route("/", get(|| async { "internal" }))).await;
    let names = StaticResolver::new().with("internal.test", &[addr]);
    let closed = client(EgressPolicy::default(), names.clone(), 1024);
    for url in [
        format!("http://{addr}/"),
        "http://internal.test/".to_owned(),
    ] {
        let e = closed.get(&url).await.unwrap_err();
        assert!(e.is_refused(), "{url}: {e}");
    }
    let open = client(loopback_allowed(), names, 1024);
    assert_eq!(
        open.get("http://internal.test/").await.unwrap().body,
        b"internal"
    );
    // The platform's own socket stays refused with loopback allowed.
    let own = client(
        loopback_allowed().with_own([addr]),
        StaticResolver::new(),
        1024,
    );
    assert!(
        own.get(&format!("http://{addr}/"))
            .await
            .unwrap_err()
            .is_refused()
    );
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_one_to_the_same_host_is() {
    let other = serve(axum::Router::new().route("/", get(|| async { "elsewhere" }))).await;
    let app = axum::Router::new()
        .route(
            "/away",
            get(|| async { Redirect::temporary("http://elsewhere.test/") }),
        )
        .route("/here", get(|| async { Redirect::temporary("/final") }))
        .route("/final", get(|| async { "final" }));
    let addr = serve(app).await;
    let names = StaticResolver::new()
        .with("origin.test", &[addr])
        .with("elsewhere.test", &[other]);
    let c = client(loopback_allowed(), names, 1024);
    let e = c.get("http://origin.test/away").await.unwrap_err();
    assert!(matches!(e, OutboundError::Redirect { .. }), "{e}");
    assert_eq!(
        c.get("http://origin.test/here").await.unwrap().body,
        b"final"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused_and_errors_carry_no_answer() {
    let app = axum::Router::new()
        .route("/big", get(|| async { "secret-".repeat(10_000) }))
        .route(
            "/chunked",
            get(|| async {
                let chunks = (0..100).map(|_| Ok::<_, std::io::Error>("secret-".repeat(100)));
                axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response()
            }),
        );
    let addr = serve(app).await;
    let c = client(loopback_allowed(), StaticResolver::new(), 1024);
    for path in ["/big", "/chunked"] {
        let e = c.get(&format!("http://{addr}{path}")).await.unwrap_err();
        assert!(matches!(e, OutboundError::TooLarge { .. }), "{path}: {e}");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}

/// Answers a public address first, then `then` (a name rebinding to an internal address
/// between the check before sending and the connection).
struct Rebinding {
    then: SocketAddr,
    calls: std::sync::atomic::AtomicUsize,
}

impl tenantry_kit::egress::Resolver for Rebinding {
    fn lookup<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> futures::future::BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        let first = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let answer = if first {
            "93.184.216.34:0".parse().unwrap()
        } else {
            self.then
        };
        Box::pin(async move { Ok(vec![answer]) })
    }
}

#[tokio::test]
async fn a_name_rebinding_to_loopback_after_the_check_is_refused_at_connect() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { "internal" }
    });
    let addr = serve(app).await;
    let resolver = Rebinding {
        then: addr,
        calls: Default::default(),
    };
    let egress = Arc::new(Egress::new(EgressPolicy::default(), Arc::new(resolver)));
    let c = OutboundHttp::new(egress, HttpLimits::default()).unwrap();
    let e = c.get("http://rebind.test/").await.unwrap_err();
    assert!(matches!(e, OutboundError::Failed { .. }), "{e}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}
