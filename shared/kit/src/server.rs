//! Serving a service: gRPC (with health and reflection) and its HTTP endpoints (`/healthz`,
//! `/readyz`, `/metrics`, plus whatever the service adds) on one port, HTTP/1.1 and h2c, with
//! graceful shutdown, connection caps and header and idle timeouts ([`ServerLimits`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::ServiceExt;

use crate::auth::middleware::{AuthState, authenticate, trace};
use crate::auth::{RpcPolicy, Verifier};
use crate::connections::{Activity, Admission, Caps, Deadlines, drive};

/// Limits on the connections of a service's port: how many, from whom, and how long one may
/// hold the port without asking anything.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerLimits {
    /// From accept, a client must have sent its first request head within this many
    /// milliseconds (HTTP version detection and an HTTP/2 preface included), and every later
    /// HTTP/1.1 head within it too; else the connection is closed.
    #[arg(
        id = "server-header-timeout-ms",
        long = "server-header-timeout-ms",
        env = "TENANTRY_SERVER_HEADER_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub header_timeout_ms: u64,

    /// A connection with no request for this many milliseconds is closed gracefully (HTTP/2
    /// has no idle timeout of its own).
    #[arg(
        id = "server-idle-timeout-ms",
        long = "server-idle-timeout-ms",
        env = "TENANTRY_SERVER_IDLE_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub idle_timeout_ms: u64,

    /// Open connections on the port at once; more are closed at accept.
    #[arg(
        id = "server-max-connections",
        long = "server-max-connections",
        env = "TENANTRY_SERVER_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    pub max_connections: usize,

    /// Open connections from one client address (IPv6: one /64) at once; more are closed at
    /// accept.
    #[arg(
        id = "server-max-connections-per-client",
        long = "server-max-connections-per-client",
        env = "TENANTRY_SERVER_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 256
    )]
    pub max_connections_per_client: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            max_connections: 10_000,
            max_connections_per_client: 256,
        }
    }
}

impl ServerLimits {
    fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms.max(100))
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.max(100))
    }
}

/// HTTP/2 pings on an otherwise quiet connection, and how long an answer may take: a peer
/// that stopped answering is dropped even while a request of its own keeps the connection busy.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

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

/// `/metrics`: the process's Prometheus recorder.
pub fn metrics_router() -> Router {
    let metrics = crate::metrics::handle();
    Router::new().route("/metrics", get(move || async move { metrics.render() }))
}

/// Assembles the router of a service: its gRPC services behind the access policy, health,
/// reflection, `/healthz`, `/readyz` and its own HTTP routes. `/metrics` is added by the
/// caller ([`metrics_router`]) on the port that should serve it.
///
/// `grpc` holds the service's own gRPC services; `service_names` are marked SERVING in gRPC
/// health; `http` holds extra HTTP routes (webhooks, WebSocket) that do their own auth.
pub async fn router(
    grpc: Routes,
    service_names: &[&'static str],
    policy: RpcPolicy,
    verifier: Arc<Verifier>,
    tenants: Arc<crate::auth::TenantDirectory>,
    readiness: Readiness,
    http: Router,
) -> Router {
    // Install the recorder before anything records, or early metrics are lost.
    crate::metrics::handle();
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
    let policy = Arc::new(policy);
    let auth = AuthState {
        verifier,
        policy: policy.clone(),
        tenants,
    };
    let grpc = grpc
        .into_axum_router()
        // Inner: deny what the policy does not allow, then hand the caller to the handler.
        .layer(axum::middleware::from_fn_with_state(auth, authenticate))
        // Outer: the span and metrics cover rejected calls too (labelled by the policy's
        // paths, so made-up ones share one label).
        .layer(axum::middleware::from_fn_with_state(policy, trace));
    let endpoints = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready).with_state(readiness));
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
///
/// Each connection is capped and timed as [`ServerLimits`] says (see
/// [`crate::connections`]); the peer's address reaches handlers as a `ConnectInfo` extension
/// (see [`client_addr`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let admission = Admission::new(
        "service",
        Caps {
            total: limits.max_connections,
            per_client: limits.max_connections_per_client,
        },
    );
    let (header_timeout, idle) = (limits.header_timeout(), limits.idle_timeout());
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    // Every connection task holds a sender: when all are dropped, every connection has ended.
    let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(admitted) = admission.admit(peer.ip(), false) else {
            continue;
        };
        let deadlines = Deadlines {
            first_request_by: Instant::now() + header_timeout,
            idle,
        };
        // Without TCP_NODELAY small gRPC frames wait on delayed ACKs (tens of milliseconds).
        let _ = tcp.set_nodelay(true);
        let (router, done, mut stopped) = (router.clone(), done.clone(), stopped.clone());
        let connection = ServeConnection {
            router,
            peer,
            activity: Arc::default(),
        };
        let builder = builder.clone();
        tokio::spawn(async move {
            let _held = (admitted, done);
            let activity = connection.activity.clone();
            let service = hyper::service::service_fn(move |request| connection.call(request));
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let stopping = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            drive(
                connection,
                &activity,
                deadlines,
                &TokioTimer::new(),
                stopping,
            )
            .await;
        });
    }
    let _ = stop.send(true);
    drop(done);
    let _ = all_done.recv().await;
    Ok(())
}

/// The service of one connection: the router, with the peer's address and the connection's
/// activity recorded for each request.
struct ServeConnection {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl ServeConnection {
    fn call(
        &self,
        mut request: http::Request<Incoming>,
    ) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + use<>
    {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let (router, activity) = (self.router.clone(), self.activity.clone());
        async move {
            let _busy = activity.begin();
            router.oneshot(request).await
        }
    }
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
