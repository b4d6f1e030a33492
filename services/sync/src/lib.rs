//! The sync service: each tenant's integrations with external systems (VTEX, MercadoLibre,
//! Google Ads, Facebook Ads, a generic HTTP JSON source), their credentials sealed per tenant,
//! and the records they bring in.
//!
//! # Layout
//! - [`api`]: the gRPC `SyncService`, its access policy, the webhook route and the seed's
//!   HTTP shapes (`/api/v2/tenant-integrations/...`).
//! - [`domain`]: the `integration` aggregate (pure), its source types and schedules.
//! - [`projection`]: the integrations' read model.
//! - [`connectors`]: how each source is read (through the kit's outbound policy).
//! - [`records`]: synced records, upserted under RLS, with the usage they add.
//! - [`runs`]: runs as jobs on the `JOBS` work queue, the worker and the runner.
//! - [`usage`]: the usage outbox published to `USAGE` (`records`, `storage`).
//! - [`budget`]: each tenant's daily API budget from its plan, spent by every provider call.
//! - [`alerts`]: alerts raised on integrations (API budget at 90%, storage at 80%, late syncs).
//! - [`config`] and [`SyncService`]: its settings and its parts for the kit's template.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod budget;
pub mod config;
pub mod connectors;
pub mod domain;
pub mod projection;
pub mod records;
pub mod runs;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantry_eventstore::{Positions, Repository};
use tenantry_kit::Clock;
use tenantry_kit::egress::{Egress, EgressPolicy, HttpLimits, OutboundHttp};
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::service::{Context, Database, Parts, Service, StartError};
use tenantry_proto::sync::v1::sync_service_server::SyncServiceServer;

pub use config::SyncConfig;
use tenantry_kit::seal::{Keystore, MasterKeys};

/// Migrations of the `sync` schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The purpose of sync's sealed secrets (first in their associated data).
pub const CREDENTIALS: &str = "tenantry.sync.credential.v1";

/// The sync service: its settings, and what a test may replace.
pub struct SyncService {
    pub config: SyncConfig,
    pub clock: Arc<dyn Clock>,
}

/// What a started sync service hands back.
pub struct Handle {
    /// The keystore (tests seal, rotate and shred with it directly).
    pub keystore: Keystore,
    /// The service's pool (its own role, under RLS), for tests that check what a scope sees.
    pub pool: sqlx::PgPool,
    /// The integrations' read model position.
    pub positions: Positions,
    pub integrations: Repository<domain::Integration>,
    /// The runner (tests run a job directly, without the queue).
    pub runner: Arc<runs::Runner>,
    pub usage: usage::UsagePublisher,
    pub scheduler: runs::scheduler::Scheduler,
    pub api: api::SyncApi,
    /// Billing's plan limits as this service follows them (tests wait for a plan with it).
    pub plans: Arc<PlanDirectory>,
}

/// Bounds of a call to a source.
fn source_limits() -> HttpLimits {
    HttpLimits {
        timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(5),
        max_body_bytes: 16 * 1024 * 1024,
        max_redirects: 3,
    }
}

impl Service for SyncService {
    type Config = SyncConfig;
    type Handle = Handle;
    const NAME: &'static str = "sync";

    fn new(config: SyncConfig) -> Self {
        Self {
            config,
            clock: Arc::new(tenantry_kit::SystemClock),
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
        let Self { config, clock } = self;
        let Some(master_key_file) = &config.master_key_file else {
            return Err(StartError::Other(
                "sync-master-key-file: required (TENANTRY_SYNC_MASTER_KEY_FILE): the file holding \
                 the master key; only `tenantry dev` generates one"
                    .into(),
            ));
        };
        let master = Arc::new(MasterKeys::from_files(
            master_key_file,
            &config.previous_master_key_files,
        )?);
        let pool = ctx.pool()?;
        let keystore = Keystore::new(pool.clone(), master, CREDENTIALS);
        // A new master key: every data key still under an old one is re-wrapped now, so the
        // old key can be retired once this start succeeded.
        let rewrapped = keystore.rewrap().await?;
        if rewrapped > 0 {
            tracing::info!(
                keys = rewrapped,
                "re-wrapped data keys under the current master key"
            );
        }
        let projection = ctx.projection(projection::integrations::IntegrationsProjection)?;
        let integrations = ctx.repository::<domain::Integration>(10_000);
        let policy = EgressPolicy::from_config(&ctx.common).with_own(Some(ctx.addr));
        let http = OutboundHttp::new(Arc::new(Egress::system(policy)), source_limits())
            .map_err(|e| StartError::Other(format!("http client: {e}")))?;
        // Billing's plan limits: each tenant's API calls per day and storage.
        let plans = PlanDirectory::follow(&ctx.store).await?;
        let budget = budget::Budget {
            pool: pool.clone(),
            plans: plans.clone(),
        };
        let usage_wake = Arc::new(tokio::sync::Notify::new());
        let runner = Arc::new(runs::Runner {
            pool: pool.clone(),
            keystore: keystore.clone(),
            integrations: integrations.clone(),
            http,
            pacing: connectors::Pacing {
                max_retry_after: Duration::from_secs(config.max_retry_after_secs),
                ..Default::default()
            },
            usage_wake: usage_wake.clone(),
            clock: clock.clone(),
            vtex_base: config.vtex_base_url.clone(),
            mercadolibre_api: config.mercadolibre_api_url.clone(),
            facebook_graph: config.facebook_graph_url.clone(),
            google_ads_api: config.google_ads_api_url.clone(),
            google_token_url: config.google_token_url.clone(),
            budget: budget.clone(),
        });
        let worker = runs::worker::Worker {
            runner: runner.clone(),
            store: ctx.store.clone(),
            concurrency: config.worker_concurrency.max(1),
            per_tenant: config.tenant_concurrency.max(1),
            ack_wait: Duration::from_secs(config.job_ack_wait_secs.max(1)),
            plans: plans.clone(),
        };
        let publisher = usage::UsagePublisher {
            pool: pool.clone(),
            store: ctx.store.clone(),
            wake: usage_wake,
            every: Duration::from_secs(1),
        };
        let api = api::SyncApi {
            integrations: integrations.clone(),
            pool: pool.clone(),
            keystore: keystore.clone(),
            store: ctx.store.clone(),
            runner: runner.clone(),
            positions: projection.positions(),
            clock: clock.clone(),
            read_wait: Duration::from_secs(5),
        };
        let scheduler = runs::scheduler::Scheduler {
            pool: pool.clone(),
            store: ctx.store.clone(),
            clock: clock.clone(),
            every: Duration::from_millis(config.schedule_tick_ms.max(10)),
            integrations: integrations.clone(),
            batch: runs::scheduler::BATCH,
        };
        let handle = Handle {
            scheduler: scheduler.clone(),
            api: api.clone(),
            keystore,
            pool,
            positions: projection.positions(),
            integrations,
            runner,
            usage: publisher.clone(),
            plans: plans.clone(),
        };
        let webhooks = api::webhooks::router(api::webhooks::Webhooks {
            pool: api.pool.clone(),
            integrations: api.integrations.clone(),
            keystore: api.keystore.clone(),
            store: ctx.store.clone(),
            clock: clock.clone(),
        });
        Ok(Parts::new(handle, api::policy::policy())
            .grpc(SyncServiceServer::new(api))
            .http(webhooks)
            .http(api::http::router(ctx.addr))
            .projection(projection)
            .follower(plans.follower().clone())
            .job("sync_worker", move |stop| worker.run(stop.wait()))
            .job("usage_outbox", move |stop| publisher.run(stop.wait()))
            .job("sync_scheduler", move |stop| scheduler.run(stop.wait())))
    }
}
