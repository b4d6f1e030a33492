//! The tenant service: tenants' lifecycle, settings, feature flags and custom domains.
//!
//! # Layout
//! - [`domain`]: the `tenant` and `reservation` aggregates (pure `decide`/`evolve`).
//! - [`api`]: the gRPC handlers, their access policy and the domain-verification prover.
//! - [`projection`]: the `tenants` read model in Postgres schema `tenant`, and its queries.
//! - [`trials`]: the sweep that expires trials after 30 days.
//! - [`config`] and [`TenantService`]: its settings, and its parts for the kit's service
//!   template (`tenantry_kit::service`), which wires them to NATS, Postgres and a port.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod domain;
pub mod projection;
pub mod trials;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantry_eventstore::Positions;
use tenantry_kit::Clock;
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::service::{Context, Database, Parts, Service, StartError};
use tenantry_proto::tenant::v1::tenant_service_server::TenantServiceServer;

use api::TenantApi;
use api::domains::{DomainProver, HttpProver};
pub use config::TenantConfig;

/// Migrations of the `tenant` schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The tenant service: its settings, and what a test or `tenantry dev` may replace.
pub struct TenantService {
    pub config: TenantConfig,
    pub clock: Arc<dyn Clock>,
    /// Proves domain ownership; `None`: over HTTP, as in production.
    pub prover: Option<Arc<dyn DomainProver>>,
}

/// What a started tenant service hands back.
pub struct Handle {
    /// The projection's position, for tests that wait on it.
    pub positions: Positions,
    /// The handlers, for tests and jobs that call them directly.
    pub api: TenantApi,
    /// Each tenant's plan limits (tests wait for a plan they appended to be applied).
    pub plans: Arc<PlanDirectory>,
}

impl Service for TenantService {
    type Config = TenantConfig;
    type Handle = Handle;
    const NAME: &'static str = "tenant";

    fn new(config: TenantConfig) -> Self {
        Self {
            config,
            clock: Arc::new(tenantry_kit::SystemClock),
            prover: None,
        }
    }

    fn listen(&self) -> SocketAddr {
        self.config.listen
    }

    fn database(&self) -> Option<Database> {
        Some(Database {
            schema: self.config.db_schema.clone(),
            role: self.config.db_role.clone(),
            max_connections: self.config.db_max_connections,
            migrator: &MIGRATOR,
        })
    }

    async fn build(self, ctx: Context) -> Result<Parts<Handle>, StartError> {
        let runner = ctx.projection(projection::TenantsProjection::default())?;
        // Billing's plan limits: the custom-domain cap. Followed here, not by every service.
        let plans = PlanDirectory::follow(&ctx.store).await?;
        let prover = match self.prover {
            Some(p) => p,
            None => Arc::new(
                HttpProver::for_service(&ctx.common, Some(ctx.addr))
                    .map_err(|e| StartError::Other(e.to_string()))?,
            ),
        };
        let api = TenantApi {
            tenants: ctx.repository(100_000),
            reservations: ctx.repository(10_000),
            pool: ctx.pool()?,
            positions: runner.positions(),
            clock: self.clock,
            prover,
            base_domain: self.config.base_domain.clone(),
            plans: plans.clone(),
            read_wait: Duration::from_secs(5),
        };
        let sweep = api.clone();
        let every = Duration::from_secs(self.config.trial_sweep_interval_secs.max(1));
        let handle = Handle {
            positions: runner.positions(),
            api: api.clone(),
            plans: plans.clone(),
        };
        Ok(Parts::new(handle, api::policy::policy())
            .grpc(TenantServiceServer::new(api))
            .follower(plans.follower().clone())
            .projection(runner)
            .job("trial_sweep", move |stop| {
                trials::sweep_every(sweep, every, stop.wait())
            }))
    }
}
