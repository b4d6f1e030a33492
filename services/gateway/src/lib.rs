//! The gateway: Tenantry's data plane. It routes each tenant's HTTP traffic to its backends
//! and enforces the tenant's status and rate limits, deciding from an in-memory snapshot of the
//! event log.
//!
//! # Layout
//! - [`domain`]: the `route` aggregate (pure) and the events the gateway reads.
//! - [`snapshot`]: hosts, tenants, routes and limits folded from the log, swapped atomically.
//! - [`decide`]: the per-request decision (tenant, status, route, quota, limit, backend).
//! - [`proxy`]: the HTTP server and the upstream client.
//! - [`balance`]: choosing a backend; [`health`]: active health checks; [`limit`]: GCRA rate
//!   limiting.
//! - [`usage`]: requests and bytes per tenant, published to the `USAGE` stream.
//! - [`api`]: the gRPC configuration API and its access policy; [`edge`]: the public API edge
//!   forwarding other services' calls.
//! - [`operator`]: the operator port (`/metrics`), apart from every port tenants reach.
//! - [`config`] and [`start`]: wiring.

#![forbid(unsafe_code)]

pub mod api;
pub mod balance;
pub mod config;
pub mod decide;
pub mod domain;
pub mod edge;
pub mod health;
pub mod limit;
pub mod operator;
pub mod proxy;
pub mod snapshot;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantry_eventstore::Repository;
use tenantry_kit::Clock;
use tenantry_kit::auth::JwksSource;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::foundation::{event_store, verifier};
use tenantry_kit::server::{self, Readiness};
use tenantry_proto::gateway::v1::gateway_config_service_server::GatewayConfigServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::GatewayConfig;
pub use tenantry_kit::foundation::StartError;

use api::GatewayApi;
use snapshot::follow::Current;

/// What a test may replace.
pub struct Overrides {
    pub clock: Arc<dyn Clock>,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            clock: Arc::new(tenantry_kit::SystemClock),
        }
    }
}

pub struct Running {
    /// The data plane.
    pub addr: SocketAddr,
    /// The gRPC configuration API.
    pub api_addr: SocketAddr,
    /// The operator port: `/metrics`.
    pub metrics_addr: SocketAddr,
    pub snapshot: Current,
    /// Rate limits shared with the other replicas.
    pub cluster: Arc<limit::Cluster>,
    /// Position of the last event in the published snapshot.
    pub applied: watch::Receiver<Option<u64>>,
    /// The data plane's certificates, when it speaks TLS (rescanned on their own every
    /// [`proxy::tls::RESCAN`]).
    pub certificates: Option<Arc<proxy::tls::Certificates>>,
    pub task: JoinHandle<()>,
}

/// Builds the snapshot from the log, then serves both ports until `shutdown` resolves.
pub async fn start(
    common: &CommonConfig,
    config: &GatewayConfig,
    listener: TcpListener,
    api_listener: TcpListener,
    overrides: Overrides,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    // A bad certificate fails the start at once, not after the log has been replayed.
    let default_chain = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        _ => None,
    };
    let (tls, certificates) = if default_chain.is_some() || config.tls_dir.is_some() {
        let (acceptor, certificates) =
            proxy::tls::acceptor(default_chain, config.tls_dir.as_deref())
                .map_err(StartError::Other)?;
        (Some(acceptor), Some(certificates))
    } else {
        (None, None)
    };
    let trusted = Arc::new(
        proxy::trust::TrustedProxies::parse(&config.trusted_proxies).map_err(StartError::Other)?,
    );
    let metrics_listener = TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|e| {
            StartError::Other(format!(
                "gateway-metrics-listen {}: {e}",
                config.metrics_listen
            ))
        })?;
    let (nats, store) = event_store(common).await?;
    usage::open_stream(&store, common.stream_replicas).await?;
    // Usage reports and the replica set are per process: a fresh id each start.
    let instance = uuid::Uuid::now_v7().simple().to_string();
    let cluster = limit::Cluster::new(
        limit::ClusterConfig {
            redis_url: config.redis_url.clone(),
            strict: config.rate_limit_mode == config::RateLimitMode::Strict,
            replicas: config.replicas,
            sync_interval: Duration::from_millis(config.limit_sync_ms.max(1)),
            timeout: Duration::from_millis(200),
            namespace: format!("tenantry:{}:", store.root()),
        },
        instance.clone(),
    )
    .map_err(StartError::Other)?;
    // Serving before Redis answered would decide every limit alone; a Redis that does not
    // answer leaves each replica its share (and the sync keeps trying).
    if !config.redis_url.is_empty() && !cluster.connect().await {
        tracing::warn!(url = %config.redis_url, replicas = cluster.replicas(), "redis unreachable at start: each replica enforces its share of every limit");
    }
    let started = std::time::Instant::now();
    let (current, applied) =
        snapshot::follow::follow(&store, &config.base_domain, cluster.clone()).await?;
    tracing::info!(
        tenants = current.load().tenants.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "gateway snapshot built from the log"
    );
    let verifier = verifier(
        common,
        &store,
        JwksSource::parse(&common.jwks),
        Duration::from_secs(30),
    )
    .await?;
    let services = edge::parse_services(&config.services).map_err(StartError::Other)?;
    let edge_routes = edge::router(
        verifier.clone(),
        current.clone(),
        cluster.clone(),
        &services,
        trusted.clone(),
    );
    let api = GatewayApi {
        routes: Repository::new(store.clone(), 100_000),
        snapshot: current.clone(),
        clock: overrides.clock,
    };
    // No `/metrics` on the public API port: the operator port serves them.
    let router = server::api_router(
        tonic::service::Routes::new(GatewayConfigServiceServer::new(api)),
        &[api::policy::SERVICE],
        api::policy::policy(),
        verifier,
        Readiness { nats, pool: None },
        edge_routes,
    )
    .await;
    let limits = proxy::Limits {
        header_read_timeout: Duration::from_millis(config.header_timeout_ms.max(100)),
        idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(100)),
        h2_keep_alive: (config.h2_keepalive_ms > 0)
            .then(|| Duration::from_millis(config.h2_keepalive_ms)),
        max_connections: config.max_connections,
        max_connections_per_client: config.max_connections_per_client,
        max_body_bytes: config.max_body_bytes,
        body_timeout: Duration::from_millis(config.body_timeout_ms.max(100)),
        max_in_flight: config.max_in_flight,
        tenant_max_in_flight: config.tenant_max_in_flight,
        upstream_timeout: Duration::from_millis(config.upstream_timeout_ms.max(1)),
        tunnel_idle_timeout: Duration::from_millis(config.tunnel_idle_timeout_ms.max(100)),
        ..Default::default()
    };
    let mut proxy = proxy::Proxy::new(current.clone(), limits, cluster.clone());
    proxy.tls = tls;
    proxy.trusted = trusted;
    let operator = operator::router(current.clone());
    let proxy = Arc::new(proxy);
    let checked = current.clone();
    let sync = cluster.clone();
    let metered = current.clone();
    let usage_js = store.jetstream().clone();
    let usage_root = store.names().usage_root.clone();
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let api_addr = api_listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let metrics_addr = metrics_listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let server_limits = common.server.clone();
    let rescanned = certificates.clone();
    let task = tokio::spawn(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let data = tokio::spawn(proxy::serve(listener, proxy, stopped(stop_rx.clone())));
        let (api_stop, operator_stop) = (stopped(stop_rx.clone()), stopped(stop_rx.clone()));
        let operator_limits = server_limits.clone();
        let api = tokio::spawn(async move {
            server::serve(api_listener, router, &server_limits, api_stop).await
        });
        let operator = tokio::spawn(async move {
            server::serve(metrics_listener, operator, &operator_limits, operator_stop).await
        });
        let checks = tokio::spawn(health::run(checked, stopped(stop_rx.clone())));
        let syncing = tokio::spawn(sync.run(stopped(stop_rx.clone())));
        let metering = tokio::spawn(usage::run(
            usage_js,
            usage_root,
            instance,
            metered,
            Duration::from_secs(1),
            stopped(stop_rx.clone()),
        ));
        let rescanning = tokio::spawn(rescan_certificates(rescanned, stopped(stop_rx.clone())));
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = tokio::join!(data, api, operator, checks, metering, syncing, rescanning);
    });
    tracing::info!(%addr, %api_addr, %metrics_addr, "gateway listening");
    Ok(Running {
        addr,
        api_addr,
        metrics_addr,
        snapshot: current,
        cluster,
        applied,
        certificates,
        task,
    })
}

/// Reads the certificate directory again every [`proxy::tls::RESCAN`] until `shutdown`.
async fn rescan_certificates(
    certificates: Option<Arc<proxy::tls::Certificates>>,
    shutdown: impl Future<Output = ()>,
) {
    let Some(certificates) = certificates else {
        return;
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = tokio::time::sleep(proxy::tls::RESCAN) => {}
            () = &mut shutdown => return,
        }
        let certificates = certificates.clone();
        let _ = tokio::task::spawn_blocking(move || certificates.rescan()).await;
    }
}
