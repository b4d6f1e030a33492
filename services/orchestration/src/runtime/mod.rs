//! Where instances run. A [`Runtime`] starts and stops single instances of a deployment's
//! revision and reports what it runs; the reconciler decides how many of which revision.
//!
//! - [`process`]: child processes on this machine (the embedded default).
//! - [`kubernetes`]: a namespace per tenant and a Deployment per deployment, by server-side
//!   apply; a declarative runtime ([`Runtime::declare`]).
//!
//! A runtime keeps running what it started when the service stops, and finds it again when
//! it starts (`adopted`), as Kubernetes keeps pods through a controller's restart: a restarted
//! orchestration service must not start duplicates or restart healthy instances.

pub mod kubernetes;
pub mod probe;
pub mod process;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

/// A boxed future, so the trait can be used as `dyn Runtime`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One instance to start: a deployment's revision.
#[derive(Clone)]
pub struct Target {
    pub tenant_id: Uuid,
    pub deployment_id: Uuid,
    pub generation: u64,
    pub spec: pb::DeploymentSpec,
    /// The spec's secret environment variables, opened (name → value).
    pub secrets: BTreeMap<String, String>,
}

// Never the secrets' values.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("tenant_id", &self.tenant_id)
            .field("deployment_id", &self.deployment_id)
            .field("generation", &self.generation)
            .field("spec", &self.spec)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What an instance is doing, as its runtime last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Started (or adopted) and not answered its probe yet.
    Starting,
    Healthy,
    /// Was healthy, then failed its probe `failure_threshold` times in a row.
    Unhealthy(String),
    /// It is gone: how it ended ("exit code 1", "signal 9", "stopped").
    Exited(String),
}

/// An instance as its runtime reports it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub instance_id: Uuid,
    pub tenant_id: Uuid,
    pub deployment_id: Uuid,
    pub generation: u64,
    pub version: String,
    /// Where it listens ("127.0.0.1:43121").
    pub address: String,
    pub health: Health,
    /// Being stopped on our request (drain, scale down, rolling update).
    pub stopping: bool,
    /// Found running at start, not started by this process.
    pub adopted: bool,
}

/// A deployment as a declarative runtime is told to run it (every pass, all of its own).
#[derive(Debug, Clone)]
pub struct Declared {
    pub target: Target,
    /// Instances the log wants now (0 while drained).
    pub replicas: usize,
    /// Decommissioned: everything of it goes.
    pub removed: bool,
}

/// A replica count a runtime's own autoscaler chose (Kubernetes' HPA), and the CPU use it
/// chose it on, in percent of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scaled {
    pub tenant_id: Uuid,
    pub deployment_id: Uuid,
    pub replicas: i32,
    pub cpu_percent: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec names an image this runtime cannot run.
    #[error("image {0:?} is not in this installation's catalog")]
    UnknownImage(String),
    #[error("no such instance {0}")]
    NoSuchInstance(Uuid),
    #[error("{0}")]
    Io(String),
}

/// Runs instances. Implementations are cheap to share (`Arc<dyn Runtime>`).
pub trait Runtime: Send + Sync + 'static {
    /// Its name in specs (`spec.runtime`).
    fn name(&self) -> &'static str;

    /// Whether it can run `spec`'s image (checked when a deployment is provisioned or
    /// updated, so a tenant hears about it at once rather than from a crash loop).
    fn accepts(&self, spec: &pb::DeploymentSpec) -> Result<(), RuntimeError>;

    /// Every instance it knows: running, being stopped, or exited and not forgotten yet.
    fn instances(&self) -> Vec<Observed>;

    /// Starts one instance of `target`.
    fn start<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Observed, RuntimeError>>;

    /// Stops an instance: asks it to end (SIGTERM), waits up to `grace`, then ends it.
    fn stop(&self, instance: Uuid, grace: Duration) -> BoxFuture<'_, Result<(), RuntimeError>>;

    /// Drops an exited instance from [`Runtime::instances`] (its end is on the log).
    fn forget(&self, instance: Uuid);

    /// The CPU time an instance has used since it started, if this runtime can measure it
    /// (the autoscaler samples it; a runtime with its own autoscaler returns `None`).
    fn cpu_time(&self, instance: Uuid) -> Option<Duration> {
        let _ = instance;
        None
    }

    /// Whether it is a declarative runtime ([`Runtime::declare`]).
    fn declarative(&self) -> bool {
        false
    }

    /// A runtime whose platform keeps deployments' replicas and rolls them out itself
    /// (Kubernetes) is handed the desired state of all its deployments each pass instead
    /// of being asked to start and stop single instances; `None`: it is not such a runtime.
    fn declare<'a>(
        &'a self,
        deployments: &'a [Declared],
    ) -> Option<BoxFuture<'a, Result<(), RuntimeError>>> {
        let _ = deployments;
        None
    }

    /// A receiver that changes whenever an instance's health or life changes, so the
    /// reconciler acts at once rather than at its next pass; `None`: it tells of no change.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// The counts its own autoscaler last chose, per deployment (none by default).
    fn scaled(&self) -> Vec<Scaled> {
        vec![]
    }
}
