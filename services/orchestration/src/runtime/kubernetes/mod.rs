//! The `kubernetes` runtime: each tenant gets a namespace, each deployment a Deployment, a
//! Service and (with autoscaling) a HorizontalPodAutoscaler, applied with server-side apply;
//! the pods, Deployments and HPAs are watched and turned into the reconciler's observations.
//!
//! Unlike the process runtime it does not start and stop single instances: Kubernetes'
//! Deployment controller keeps the replicas and rolls revisions out, and its HPA scales. So
//! it is a declarative runtime ([`Runtime::declare`]): each reconcile pass hands it every
//! deployment of its own with the count the log wants, it applies what changed, and reports
//! the pods it sees as instances (`pod.created`, `health.changed`, `pod.deleted` on the log)
//! and its HPAs' decisions (`autoscaling.triggered`).
//!
//! # Layout
//! - [`manifests`]: the objects, pure (golden files in the tests).
//! - [`apply`]: server-side apply and delete, sending only what changed.
//! - [`watch`]: the watches and what they have seen.
//!
//! A restarted service adopts what runs: its first pass applies every object once (the
//! server keeps those unchanged, same `resourceVersion`) and its watches list the pods
//! already there, which the log knows already, so nothing is started twice.

pub mod apply;
pub mod manifests;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tenantry_kit::plans::PlanDirectory;
use tenantry_proto::events::v1 as pb;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::{BoxFuture, Declared, Observed, Runtime, RuntimeError, Scaled, Target};
use apply::Applied;
pub use manifests::Settings;

/// Tenants applied at once.
const CONCURRENT_TENANTS: usize = 16;

/// Where the cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    /// The service account of the pod this service runs in.
    InCluster,
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
}

impl Cluster {
    /// `in-cluster`, or a kubeconfig's path.
    pub fn parse(value: &str) -> Self {
        if value == "in-cluster" {
            Self::InCluster
        } else {
            Self::Kubeconfig(PathBuf::from(value))
        }
    }

    /// A client for it.
    pub async fn client(&self) -> Result<Client, RuntimeError> {
        let config = match self {
            Self::InCluster => Config::incluster().map_err(|e| RuntimeError::Io(e.to_string()))?,
            Self::Kubeconfig(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| RuntimeError::Io(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| RuntimeError::Io(format!("{}: {e}", path.display())))?
            }
        };
        Client::try_from(config).map_err(|e| RuntimeError::Io(e.to_string()))
    }
}

fn api_error(e: kube::Error) -> RuntimeError {
    RuntimeError::Io(format!("kubernetes: {e}"))
}

pub struct KubernetesRuntime {
    client: Client,
    settings: Settings,
    /// Each tenant's plan, for its ResourceQuota.
    plans: Arc<PlanDirectory>,
    seen: watch::Shared,
    applied: Arc<Mutex<Applied>>,
    /// The watches; ended with the runtime.
    watches: tokio::task::JoinHandle<()>,
}

impl KubernetesRuntime {
    /// A runtime on `client`; its watches start at once.
    pub fn new(client: Client, settings: Settings, plans: Arc<PlanDirectory>) -> Self {
        let seen = watch::Shared::default();
        let applied = Arc::new(Mutex::new(Applied::default()));
        let watches = tokio::spawn(watch::run(client.clone(), seen.clone(), applied.clone()));
        Self {
            client,
            settings,
            plans,
            seen,
            applied,
            watches,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, watch::Seen> {
        self.seen.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies every deployment of `declared`, each tenant's namespace-wide objects first;
    /// [`CONCURRENT_TENANTS`] tenants at a time (a restarted service sends every object once,
    /// and an API server's round trip is what takes the time). The first failure is
    /// returned once every tenant has been tried.
    async fn apply_all(&self, declared: &[Declared]) -> Result<(), RuntimeError> {
        // Owned: the futures below must not borrow the slice (a `Send` bound on a stream of
        // borrowing futures does not hold for every lifetime).
        let mut tenants: BTreeMap<Uuid, Vec<Declared>> = BTreeMap::new();
        for d in declared {
            tenants
                .entry(d.target.tenant_id)
                .or_default()
                .push(d.clone());
        }
        let results: Vec<Result<usize, RuntimeError>> = futures::stream::iter(tenants)
            .map(|(tenant, deployments)| self.apply_tenant(tenant, deployments))
            .buffer_unordered(CONCURRENT_TENANTS)
            .collect()
            .await;
        let mut sent = 0;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(n) => sent += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if sent > 0 {
            tracing::debug!(objects = sent, "applied kubernetes objects");
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn apply_tenant(
        &self,
        tenant: Uuid,
        deployments: Vec<Declared>,
    ) -> Result<usize, RuntimeError> {
        let mut sent = 0;
        // Nothing of it runs any more: its deployments' objects go, its namespace (quota
        // and policies) stays for the next one.
        if !deployments.iter().all(|d| d.removed) {
            let dedicated = self
                .plans
                .limits(tenant)
                .map_or(0, |p| p.dedicated_instances);
            let objects = manifests::tenant(tenant, dedicated, &self.settings);
            sent += apply::tenant(&self.client, &self.applied, &objects)
                .await
                .map_err(api_error)?;
        }
        for d in deployments {
            sent += if d.removed {
                apply::remove(
                    &self.client,
                    &self.applied,
                    &manifests::namespace_name(d.target.tenant_id),
                    &manifests::deployment_name(d.target.deployment_id),
                )
                .await
            } else {
                let objects = manifests::deployment(&d.target, d.replicas, &self.settings);
                apply::deployment(&self.client, &self.applied, &objects).await
            }
            .map_err(api_error)?;
        }
        Ok(sent)
    }

    async fn delete_pod(&self, instance: Uuid) -> Result<(), RuntimeError> {
        let (namespace, name) = self
            .read()
            .pods
            .get(&instance)
            .map(|p| (p.namespace.clone(), p.name.clone()))
            .ok_or(RuntimeError::NoSuchInstance(instance))?;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(api_error(e)),
        }
    }
}

impl Drop for KubernetesRuntime {
    fn drop(&mut self) {
        self.watches.abort();
    }
}

impl Runtime for KubernetesRuntime {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    /// Any image: the cluster pulls it (the spec's token check already refused anything
    /// that is not an image reference).
    fn accepts(&self, _spec: &pb::DeploymentSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn instances(&self) -> Vec<Observed> {
        self.read()
            .pods
            .values()
            .map(|p| p.observed.clone())
            .collect()
    }

    /// Not used: the reconciler declares Kubernetes deployments instead
    /// ([`Runtime::declare`]); the Deployment controller starts their pods.
    fn start<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Observed, RuntimeError>> {
        let _ = target;
        Box::pin(async {
            Err(RuntimeError::Io(
                "the kubernetes runtime runs deployments, not single instances".into(),
            ))
        })
    }

    /// Deletes the pod (its Deployment replaces it, as it would a failed one); Kubernetes
    /// sends it SIGTERM and gives it its termination grace.
    fn stop(&self, instance: Uuid, grace: Duration) -> BoxFuture<'_, Result<(), RuntimeError>> {
        let _ = grace;
        Box::pin(self.delete_pod(instance))
    }

    fn forget(&self, instance: Uuid) {
        self.seen
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .forget(instance);
    }

    fn declarative(&self) -> bool {
        true
    }

    fn declare<'a>(
        &'a self,
        deployments: &'a [Declared],
    ) -> Option<BoxFuture<'a, Result<(), RuntimeError>>> {
        Some(Box::pin(self.apply_all(deployments)))
    }

    fn scaled(&self) -> Vec<Scaled> {
        self.read().scaled.values().copied().collect()
    }
}
