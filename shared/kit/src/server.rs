//! Serving a service: gRPC (with health and reflection) and its HTTP endpoints (`/healthz`,
//! `/readyz`, `/metrics`, plus whatever the service adds) on one port, HTTP/1.1 and h2c, with
//! graceful shutdown.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;

use crate::auth::middleware::{AuthState, authenticate, trace};
use crate::auth::{RpcPolicy, Verifier};

/// What `/readyz` checks: the service can reach NATS and its database, its followers are
/// live (state kept in memory from the log is not stale), and its own checks pass.
#[derive(Clone)]
pub struct Readiness {
    pub nats: async_nats::Client,
    /// `None` for a service without a database (the gateway).
    pub pool: Option<sqlx::PgPool>,
    pub followers: Vec<tenantry_eventstore::Follower>,
    pub checks: Vec<(&'static str, crate::service::ReadyCheck)>,
}

/// Assembles the router of a service.
///
/// `grpc` holds the service's own gRPC services; `service_names` are marked SERVING in gRPC
/// health; `http` holds extra HTTP routes (webhooks, WebSocket) that do their own auth.
pub async fn router(
    grpc: Routes,
    service_names: &[&'static str],
    policy: RpcPolicy,
    verifier: Arc<Verifier>,
    readiness: Readiness,
    http: Router,
) -> Router {
    // Install the recorder before anything records, or early metrics are lost.
    let metrics = crate::metrics::handle();
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    health.set_service_status("", ServingStatus::Serving).await;
    let mut grpc = grpc.add_service(health_service);
    // Reflection lets grpcurl and the RBAC test enumerate every RPC.
    // It advertises this server's services only, not every service in the descriptor set.
    let reflection = service_names.iter().fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tenantry_proto::FILE_DESCRIPTOR_SET),
        |builder, name| builder.with_service_name(*name),
    );
    if let Ok(reflection) = reflection.build_v1() {
        grpc = grpc.add_service(reflection);
    }
    let auth = AuthState {
        verifier,
        policy: Arc::new(policy),
    };
    let grpc = grpc
        .into_axum_router()
        // Inner: deny what the policy does not allow, then hand the caller to the handler.
        .layer(axum::middleware::from_fn_with_state(auth, authenticate))
        // Outer: the span and metrics cover rejected calls too.
        .layer(axum::middleware::from_fn(trace));
    let endpoints = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(readiness))
        .route("/metrics", get(move || async move { metrics.render() }));
    grpc.merge(endpoints).merge(http)
}

async fn ready(State(r): State<Readiness>) -> (StatusCode, String) {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why);
    if r.nats.connection_state() != async_nats::connection::State::Connected {
        return unavailable("nats unreachable".into());
    }
    if let Some(pool) = &r.pool
        && sqlx::query("SELECT 1").execute(pool).await.is_err()
    {
        return unavailable("database unreachable".into());
    }
    for follower in &r.followers {
        let status = follower.status();
        match status.state {
            tenantry_eventstore::FollowState::Live => {}
            tenantry_eventstore::FollowState::CatchingUp { pending } => {
                return unavailable(format!(
                    "{} is catching up: {pending} messages behind",
                    follower.name()
                ));
            }
            tenantry_eventstore::FollowState::Interrupted { reason } => {
                return unavailable(format!(
                    "{} stopped following the log at {}: {reason}",
                    follower.name(),
                    status.position
                ));
            }
        }
    }
    for (name, check) in &r.checks {
        if let Err(why) = check().await {
            return unavailable(format!("{name}: {why}"));
        }
    }
    (StatusCode::OK, "ready".into())
}

/// Serves `router` on an already bound listener until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Without TCP_NODELAY small gRPC frames wait on delayed ACKs (tens of milliseconds).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The peer address reaches handlers as a `ConnectInfo` extension (see [`client_addr`]).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The address of the peer that sent `request` (the TCP peer: a proxy in front is not
/// trusted to say who its client was unless configured so: [`crate::client_addr`]).
pub fn client_addr<T>(request: &tonic::Request<T>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
