//! The orchestration service: tenants' dedicated instances (deployments), the runtime that
//! runs them and the reconciler that keeps them as the log says.
//!
//! # Layout
//! - [`domain`]: the `deployment` aggregate (pure `decide`/`evolve`) and spec validation.
//! - [`directory`]: every deployment as the log says, in memory (desired state, queries).
//! - [`runtime`]: the `Runtime` trait, the `process` runtime (child processes) and the
//!   `kubernetes` runtime (server-side apply and watches; enabled by configuration).
//! - [`reconciler`]: desired from the log, observed from the runtime; observations appended.
//! - [`secrets`]: deployments' secret environment variables, sealed with the kit's keystore.
//! - [`autoscaler`]: measured CPU against the deployments' targets; `autoscaling.triggered`.
//! - [`usage`]: tenants' instance time, reported as `instance_hours` to the `USAGE` stream.
//! - [`api`]: the gRPC handlers and their access policy.
//! - [`feed`]: the WebSocket feed of a tenant's deployment events (replay, then live).
//! - [`config`] and [`OrchestrationService`]: its settings and its parts for the kit's template.

#![forbid(unsafe_code)]

pub mod api;
pub mod autoscaler;
pub mod config;
pub mod directory;
pub mod domain;
pub mod feed;
pub mod reconciler;
pub mod runtime;
pub mod secrets;
pub mod usage;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantry_kit::Clock;
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::service::{Context, Database, Parts, Service, StartError};
use tenantry_proto::orchestration::v1::orchestration_service_server::OrchestrationServiceServer;
use uuid::Uuid;

use api::OrchestrationApi;
pub use config::OrchestrationConfig;
use directory::Directory;
use runtime::Runtime;
use runtime::kubernetes::{Cluster, KubernetesRuntime};
use runtime::process::{ProcessRuntime, Program};
use tenantry_kit::seal::{Keystore, MasterKeys};

/// Migrations of the `orchestration` schema (the keystore), applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The orchestration service: its settings, and what a test may replace.
pub struct OrchestrationService {
    pub config: OrchestrationConfig,
    pub clock: Arc<dyn Clock>,
    /// The WebSocket feed's bounds (tests make them small).
    pub feed: feed::FeedConfig,
}

/// What a started orchestration service hands back.
pub struct Handle {
    /// Every deployment as the log says (tests wait on its position).
    pub directory: Arc<Directory>,
    /// Each tenant's plan limits (tests wait for a plan they appended).
    pub plans: Arc<PlanDirectory>,
    /// The process runtime (tests read instances' pids from it).
    pub runtime: Arc<ProcessRuntime>,
    /// The Kubernetes runtime, when configured.
    pub kubernetes: Option<Arc<KubernetesRuntime>>,
    /// The keystore of secret variables (tests seal, open and shred with it).
    pub keystore: Keystore,
    pub api: OrchestrationApi,
}

impl Service for OrchestrationService {
    type Config = OrchestrationConfig;
    type Handle = Handle;
    const NAME: &'static str = "orchestration";

    fn new(config: OrchestrationConfig) -> Self {
        Self {
            config,
            clock: Arc::new(tenantry_kit::SystemClock),
            feed: feed::FeedConfig::default(),
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
        let Some(master_key_file) = &self.config.master_key_file else {
            return Err(StartError::Other(
                "orchestration-master-key-file: required (TENANTRY_ORCHESTRATION_MASTER_KEY_FILE): \
                 the file holding the master key; only `tenantry dev` generates one"
                    .into(),
            ));
        };
        let master = Arc::new(MasterKeys::from_files(
            master_key_file,
            &self.config.previous_master_key_files,
        )?);
        let keystore = Keystore::new(ctx.pool()?, master, secrets::PURPOSE);
        // A new master key: every data key still under an old one is re-wrapped now.
        let rewrapped = keystore.rewrap().await?;
        if rewrapped > 0 {
            tracing::info!(
                keys = rewrapped,
                "re-wrapped data keys under the current master key"
            );
        }
        let mut catalog = HashMap::new();
        for entry in self
            .config
            .process_images
            .iter()
            .filter(|e| !e.trim().is_empty())
        {
            let (name, program) = Program::parse_entry(entry)
                .map_err(|e| StartError::Other(format!("orchestration-process-image: {e}")))?;
            catalog.insert(name, program);
        }
        let state_dir = self.config.state_dir().ok_or_else(|| {
            StartError::Other("orchestration-state-dir: not set and no HOME".into())
        })?;
        let process = Arc::new(
            ProcessRuntime::open(catalog, state_dir.clone())
                .map_err(|e| StartError::Other(format!("process runtime: {e}")))?,
        );
        // Billing's plan limits: the dedicated instances a tenant's plan allows.
        let plans = PlanDirectory::follow(&ctx.store).await?;
        let directory = Directory::follow(&ctx.store).await?;
        let deployments = ctx.repository(10_000);
        let runtime: Arc<dyn Runtime> = process.clone();
        let kubernetes = match &self.config.kubernetes {
            Some(cluster) => {
                let settings = self
                    .config
                    .kubernetes_settings()
                    .map_err(StartError::Other)?;
                let client = Cluster::parse(cluster)
                    .client()
                    .await
                    .map_err(|e| StartError::Other(format!("orchestration-kubernetes: {e}")))?;
                Some(Arc::new(KubernetesRuntime::new(
                    client,
                    settings,
                    plans.clone(),
                )))
            }
            None => None,
        };
        let mut runtimes = vec![runtime.clone()];
        if let Some(k) = &kubernetes {
            runtimes.push(k.clone() as Arc<dyn Runtime>);
        }
        // Every runtime's instances are metered.
        let metered = runtimes.clone();
        let api = OrchestrationApi {
            deployments: deployments.clone(),
            directory: directory.clone(),
            plans: plans.clone(),
            runtimes,
            clock: self.clock,
            keystore: keystore.clone(),
            read_wait: Duration::from_secs(5),
            provisioning: Arc::default(),
        };
        let autoscaler = autoscaler::Autoscaler::new(
            directory.clone(),
            runtime.clone(),
            deployments.clone(),
            autoscaler::Windows {
                sample: Duration::from_millis(self.config.autoscale_sample_ms.max(10)),
                up: Duration::from_millis(self.config.autoscale_up_window_ms),
                down: Duration::from_millis(self.config.autoscale_down_window_ms),
            },
        );
        let meter = usage::Meter::new(
            ctx.store.names().usage_root.clone(),
            Uuid::now_v7().simple().to_string(),
            Duration::from_secs(self.config.usage_unit_seconds.max(1)),
        )
        .stored_in(
            // Its own folder: the process runtime reads every `.json` of the state directory
            // as an instance's record.
            state_dir.join("usage").join("carry.json"),
            chrono::Utc::now().timestamp(),
        );
        let usage_js = ctx.store.jetstream().clone();
        let usage_every = Duration::from_millis(self.config.usage_interval_ms.max(10));
        // The Kubernetes runtime's deployments have their own reconciler (each reconciler
        // handles its runtime's deployments only).
        let kube_reconciler = kubernetes.clone().map(|k| {
            reconciler::Reconciler::new(
                directory.clone(),
                k,
                deployments.clone(),
                keystore.clone(),
                Duration::from_millis(self.config.drain_grace_ms),
                Duration::from_millis(self.config.reconcile_interval_ms.max(10)),
            )
        });
        let reconciler = reconciler::Reconciler::new(
            directory.clone(),
            runtime,
            deployments,
            keystore.clone(),
            Duration::from_millis(self.config.drain_grace_ms),
            Duration::from_millis(self.config.reconcile_interval_ms.max(10)),
        )
        .with_deregister_delay(Duration::from_millis(self.config.deregister_delay_ms));
        let handle = Handle {
            directory: directory.clone(),
            plans: plans.clone(),
            runtime: process,
            kubernetes,
            keystore,
            api: api.clone(),
        };
        let feed = feed::router(ctx.store.clone(), ctx.addr, self.feed);
        let mut parts = Parts::new(handle, api::policy::policy())
            .grpc(OrchestrationServiceServer::new(api))
            .http(feed)
            .follower(plans.follower().clone())
            .follower(directory.follower().clone())
            .job("reconciler", move |stop| reconciler.run(stop.wait()))
            .job("autoscaler", move |stop| autoscaler.run(stop.wait()))
            .job("usage", move |stop| {
                usage::run(usage_js, meter, metered, usage_every, stop.wait())
            });
        if let Some(k) = kube_reconciler {
            parts = parts.job("kubernetes-reconciler", move |stop| k.run(stop.wait()));
        }
        Ok(parts)
    }
}
