//! The tenant service: tenants' lifecycle, settings, feature flags and custom domains.
//!
//! # Layout
//! - [`domain`]: the `tenant` and `reservation` aggregates (pure `decide`/`evolve`).
//! - [`api`]: the gRPC handlers, their access policy and the domain-verification prover.
//! - [`projection`]: the `tenants` read model in Postgres schema `tenant`, and its queries.
//! - [`trials`]: the sweep that expires trials after 30 days.
//! - [`config`] and [`start`]: wiring it all to NATS, Postgres and a listener.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod domain;
pub mod projection;
pub mod trials;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantry_eventstore::{Positions, ProjectionRunner, Repository, RunnerConfig};
use tenantry_kit::Clock;
use tenantry_kit::auth::JwksSource;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::foundation::{Foundation, Schema};
use tenantry_kit::server::{self, Readiness};
use tenantry_proto::tenant::v1::tenant_service_server::TenantServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use api::TenantApi;
use api::domains::{DomainProver, HttpProver};
pub use config::TenantConfig;

/// Migrations of the `tenant` schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub use tenantry_kit::foundation::StartError;

/// What a test or `tenantry dev` may replace.
pub struct Overrides {
    pub clock: Arc<dyn Clock>,
    pub prover: Option<Arc<dyn DomainProver>>,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            clock: Arc::new(tenantry_kit::SystemClock),
            prover: None,
        }
    }
}

/// A started tenant service.
pub struct Running {
    pub addr: SocketAddr,
    /// The projection's position, for tests that wait on it.
    pub positions: Positions,
    /// The handlers, for tests and jobs that call them directly.
    pub api: TenantApi,
    pub task: JoinHandle<()>,
}

/// Connects, migrates, and serves on `listener` until `shutdown` resolves.
pub async fn start(
    common: &CommonConfig,
    config: &TenantConfig,
    listener: TcpListener,
    overrides: Overrides,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    let foundation = Foundation::connect(
        common,
        Schema {
            name: &config.db_schema,
            role: &config.db_role,
            max_connections: config.db_max_connections,
            migrator: &MIGRATOR,
        },
    )
    .await?;
    let verifier = foundation
        .verifier(
            common,
            JwksSource::parse(&common.jwks),
            Duration::from_secs(30),
        )
        .await?;
    let Foundation { nats, store, pool } = foundation;

    let runner = ProjectionRunner::new(
        store.clone(),
        pool.clone(),
        projection::TenantsProjection::default(),
        RunnerConfig::default(),
    );
    let prover = match overrides.prover {
        Some(p) => p,
        None => Arc::new(HttpProver::new(None).map_err(|e| StartError::Other(e.to_string()))?),
    };
    let api = TenantApi {
        tenants: Repository::new(store.clone(), 100_000),
        reservations: Repository::new(store.clone(), 10_000),
        pool: pool.clone(),
        positions: runner.positions(),
        clock: overrides.clock,
        prover,
        read_wait: Duration::from_secs(5),
    };

    let routes = tonic::service::Routes::new(TenantServiceServer::new(api.clone()));
    let router = server::router(
        routes,
        &[api::policy::SERVICE],
        api::policy::policy(),
        verifier,
        Readiness {
            nats,
            pool: Some(pool),
        },
        axum::Router::new(),
    )
    .await;

    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let positions = runner.positions();
    let sweep_api = api.clone();
    let sweep_every = Duration::from_secs(config.trial_sweep_interval_secs.max(1));
    let limits = common.server.clone();
    let task = tokio::spawn(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let projection = tokio::spawn(runner.run(stopped(stop_rx.clone())));
        let sweeper = tokio::spawn(trials::sweep_every(
            sweep_api,
            sweep_every,
            stopped(stop_rx.clone()),
        ));
        if let Err(e) = server::serve(listener, router, &limits, shutdown).await {
            tracing::error!(error = %e, "server failed");
        }
        let _ = stop_tx.send(true);
        let _ = tokio::join!(projection, sweeper);
    });
    tracing::info!(%addr, "tenant service listening");
    Ok(Running {
        addr,
        positions,
        api,
        task,
    })
}
