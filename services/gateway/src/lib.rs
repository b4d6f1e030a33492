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
//! - [`config`] and [`GatewayService`]: its settings, and its parts for the kit's service
//!   template (`tenantry_kit::service`).

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

use tenantry_kit::Clock;
use tenantry_kit::service::{Context, Database, Parts, Service, StartError};
use tenantry_proto::gateway::v1::gateway_config_service_server::GatewayConfigServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::GatewayConfig;

use api::GatewayApi;
use snapshot::follow::Current;

/// The gateway: its settings, and what a test may replace.
pub struct GatewayService {
    pub config: GatewayConfig,
    pub clock: Arc<dyn Clock>,
    /// The data plane's listener; `None`: bound at start on `config.listen`.
    pub listener: Option<TcpListener>,
    /// Resolves backends' names (the system's resolver when `None`); what it answers is
    /// still judged by the outbound policy.
    pub resolver: Option<Arc<dyn tenantry_kit::egress::Resolver>>,
}

/// What a started gateway hands back.
pub struct Handle {
    /// The data plane (the API port is the running service's `addr`).
    pub data_addr: SocketAddr,
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
}

impl Service for GatewayService {
    type Config = GatewayConfig;
    type Handle = Handle;
    const NAME: &'static str = "gateway";

    fn new(config: GatewayConfig) -> Self {
        Self {
            config,
            clock: Arc::new(tenantry_kit::SystemClock),
            listener: None,
            resolver: None,
        }
    }

    /// The configuration API and public API edge; the data plane (`config.listen`) has its
    /// own port.
    #[allow(clippy::misnamed_getters)] // the template's port is the API's, not the data plane's
    fn listen(&self) -> SocketAddr {
        self.config.api_listen
    }

    fn database(&self) -> Option<Database> {
        None
    }

    /// Builds the snapshot from the log, then serves the data plane beside the API port.
    async fn build(self, ctx: Context) -> Result<Parts<Handle>, StartError> {
        let config = self.config;
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
        let trusted = Arc::new(config.trusted_proxies.clone());
        let metrics_listener = TcpListener::bind(config.metrics_listen)
            .await
            .map_err(|e| {
                StartError::Other(format!(
                    "gateway-metrics-listen {}: {e}",
                    config.metrics_listen
                ))
            })?;
        let metrics_addr = metrics_listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        let listener = match self.listener {
            Some(l) => l,
            None => TcpListener::bind(config.listen)
                .await
                .map_err(|e| StartError::Other(format!("listen on {}: {e}", config.listen)))?,
        };
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        let store = &ctx.store;
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
        let egress = Arc::new(api::outbound::egress(
            &ctx.common,
            &config,
            &[addr, ctx.addr],
            self.resolver,
        ));
        let started = std::time::Instant::now();
        let (current, applied, follower) =
            snapshot::follow::follow(store, &config.base_domain, cluster.clone(), egress.clone())
                .await?;
        tracing::info!(
            tenants = current.load().tenants.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "gateway snapshot built from the log"
        );
        let verifier = ctx
            .verifier(
                tenantry_kit::auth::JwksSource::parse(&ctx.common.jwks),
                tenantry_kit::service::JWKS_REFRESH,
                Duration::from_secs(ctx.common.jwks_max_age_secs),
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
            routes: ctx.repository(100_000),
            snapshot: current.clone(),
            clock: self.clock,
            egress,
            limits: config.config_limits,
            creations: Arc::new(api::limits::Creations::new(applied.clone())),
        };
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
        let (checked, sync, metered) = (current.clone(), cluster.clone(), current.clone());
        let usage_js = store.jetstream().clone();
        let usage_root = store.names().usage_root.clone();
        let rescanned = certificates.clone();
        let handle = Handle {
            data_addr: addr,
            metrics_addr,
            snapshot: current,
            cluster,
            applied,
            certificates,
        };
        tracing::info!(%addr, %metrics_addr, "gateway data plane and operator port listening");
        Ok(Parts::new(handle, api::policy::policy())
            .grpc(GatewayConfigServiceServer::new(api))
            .http(edge_routes)
            // Every tenant's traffic: never on the API port tenants reach.
            .operator_port(metrics_listener, operator)
            .verifier(verifier)
            .follower(follower)
            .job("data_plane", move |stop| {
                proxy::serve(listener, proxy, stop.wait())
            })
            .job("health_checks", move |stop| {
                health::run(checked, stop.wait())
            })
            .job("limit_sync", move |stop| sync.run(stop.wait()))
            .job("usage", move |stop| {
                usage::run(
                    usage_js,
                    usage_root,
                    instance,
                    metered,
                    Duration::from_secs(1),
                    stop.wait(),
                )
            })
            .job("certificates", move |stop| {
                rescan_certificates(rescanned, stop.wait())
            }))
    }
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
