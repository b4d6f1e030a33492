//! The reconciler: desired state from the log (the [`Directory`]), observed state from the
//! runtime; each pass starts and stops instances to bring one toward the other, and appends
//! what it observed to the deployment's events.
//!
//! - **Prompt.** A pass runs as soon as the log or the runtime changes (a deployment
//!   provisioned, an instance healthy), not only every `every`: provisioning to healthy waits
//!   for the program, not for the reconciler's clock.
//! - **Idempotent.** A pass decides from what it sees, not from what it did before; the
//!   observations it appends are deduplicated by the aggregate (a pod already created, a
//!   health already recorded decides nothing), so passes may repeat, and a restarted
//!   reconciler appends nothing it appended before.
//! - **Adopts.** After a restart the runtime reports the instances still running as adopted;
//!   they count like any other, so no duplicate is started and a healthy one is not restarted.
//! - **Rolling update** (Kubernetes' max surge 1, max unavailable 0): one instance of the new
//!   revision is started; an old one is stopped only once the healthy instances exceed the
//!   desired count; and so on until only the new revision runs.
//! - **Restart with backoff.** An instance that exits on its own is replaced; after each such
//!   exit in a row the next start of that deployment waits longer (200 ms doubling, at most
//!   30 s); an instance turning healthy resets it.
//! - **Liveness.** An instance that was healthy and fails its probes is stopped and replaced.
//! - **Out of rotation, then stopped.** Before an instance is stopped, `pod.draining` goes on
//!   the log, and gateways take it out of their routes' rotation; a healthy instance (one that
//!   may be in a rotation) is signalled only after the deregistration delay, so the requests
//!   gateways sent it before they heard finish (the program gets SIGTERM then, and the grace
//!   to finish what it still holds). If the log cannot be written, the instance is not stopped
//!   (the next pass tries again): stopping it unannounced would fail requests.
//! - **Declarative runtimes** (Kubernetes, [`Runtime::declare`]) get the desired state of all
//!   their deployments each pass instead of starts and stops (their platform keeps replicas,
//!   rolls out and restarts); their instances are reported the same way, and their own
//!   autoscaler's decisions ([`Runtime::scaled`]) go on the log as `autoscaling.triggered`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantry_eventstore::{CommandMeta, Repository};
use tenantry_kit::seal::Keystore;
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::directory::Directory;
use crate::domain::{Deployment, DeploymentCommand, Status, deployment};
use crate::runtime::{Declared, Health, Observed, Runtime, Target};
use crate::secrets;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The least time between two passes' starts: a burst of changes is one pass, not many.
const MIN_GAP: Duration = Duration::from_millis(10);

/// Resolves when the runtime reports a change; never, for a runtime that reports none (or
/// once its reports end).
async fn changed(changes: Option<&mut tokio::sync::watch::Receiver<u64>>) -> Option<()> {
    match changes {
        Some(changes) => changes.changed().await.ok(),
        None => std::future::pending().await,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Backoff {
    crashes: u32,
    not_before: Option<Instant>,
}

/// What a pass did, for tests and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub started: usize,
    pub stopping: usize,
    pub observed: usize,
}

pub struct Reconciler {
    pub directory: Arc<Directory>,
    pub runtime: Arc<dyn Runtime>,
    pub deployments: Repository<Deployment>,
    /// How long an instance may take to stop after SIGTERM.
    pub grace: Duration,
    pub every: Duration,
    /// Between `pod.draining` on the log and SIGTERM: time for every gateway to apply it.
    pub deregister_delay: Duration,
    backoff: HashMap<(Uuid, Uuid), Backoff>,
    /// Instances whose creation and health this reconciler has put on the log already.
    reported: HashMap<Uuid, Option<bool>>,
    /// Instances it asked to stop (their end is "stopped", not "exited").
    stopped: HashSet<Uuid>,
    /// Opens deployments' secret environment variables.
    keystore: Keystore,
    /// Each wanted revision's secret variables, opened once: ((tenant, deployment),
    /// generation) → name → value. Revisions no longer wanted are dropped after each pass.
    opened: HashMap<((Uuid, Uuid), u64), BTreeMap<String, String>>,
    /// Revisions whose secrets did not open, warned about once (retried every pass).
    unopenable: HashSet<((Uuid, Uuid), u64)>,
}

fn meta(command_id: String) -> CommandMeta {
    CommandMeta {
        correlation_id: command_id.clone(),
        command_id,
        actor: "system:orchestration".into(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    }
}

impl Reconciler {
    pub fn new(
        directory: Arc<Directory>,
        runtime: Arc<dyn Runtime>,
        deployments: Repository<Deployment>,
        keystore: Keystore,
        grace: Duration,
        every: Duration,
    ) -> Self {
        Self {
            directory,
            runtime,
            deployments,
            grace,
            every,
            deregister_delay: Duration::ZERO,
            backoff: HashMap::new(),
            reported: HashMap::new(),
            stopped: HashSet::new(),
            keystore,
            opened: HashMap::new(),
            unopenable: HashSet::new(),
        }
    }

    /// The secret variables of `wanted`'s revision, opened (once per revision); `None` when
    /// they do not open (the tenant's keys shredded, the store unreachable): the revision is
    /// not started or applied, and the next pass tries again.
    async fn secrets_of(
        &mut self,
        key: (Uuid, Uuid),
        wanted: &Deployment,
    ) -> Option<BTreeMap<String, String>> {
        if wanted.spec.secret_env.is_empty() {
            return Some(BTreeMap::new());
        }
        let revision = (key, wanted.generation);
        if let Some(opened) = self.opened.get(&revision) {
            return Some(opened.clone());
        }
        match secrets::open_all(&self.keystore, key.0, key.1, &wanted.spec).await {
            Ok(opened) => {
                self.unopenable.remove(&revision);
                self.opened.insert(revision, opened.clone());
                Some(opened)
            }
            Err(e) => {
                if self.unopenable.insert(revision) {
                    tracing::warn!(tenant_id = %key.0, deployment = %key.1, generation = wanted.generation, error = %e, "the deployment's secrets do not open; it is not started");
                }
                None
            }
        }
    }

    /// Waits `delay` between an instance's `pod.draining` and its SIGTERM.
    pub fn with_deregister_delay(mut self, delay: Duration) -> Self {
        self.deregister_delay = delay;
        self
    }

    /// Passes until `stop` resolves: at once when the log or the runtime changes (a
    /// provision, an instance turning healthy), and every `every` in any case (a backoff
    /// running out, a change missed). Changes that come during a pass are coalesced into the
    /// next one, and passes are at least [`MIN_GAP`] apart.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut log = self.directory.follower().watch();
        let mut runtime = self.runtime.changes();
        loop {
            let began = Instant::now();
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "reconcile pass failed; next pass retries");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.every) => {}
                Ok(()) = log.changed() => {}
                Some(()) = changed(runtime.as_mut()) => {}
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(MIN_GAP.saturating_sub(began.elapsed())) => {}
            }
        }
    }

    async fn observe(
        &self,
        instance: &Observed,
        command: DeploymentCommand,
        command_id: String,
    ) -> Result<(), String> {
        let address = deployment::address(instance.tenant_id, instance.deployment_id)
            .map_err(|e| e.to_string())?;
        self.deployments
            .execute(&address, &command, &meta(command_id))
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    /// One pass: report what the runtime shows, then start and stop toward the log.
    pub async fn pass(&mut self) -> Result<Pass, String> {
        let mut pass = Pass::default();
        let observed = self.runtime.instances();
        let mut by_deployment: HashMap<(Uuid, Uuid), Vec<Observed>> = HashMap::new();
        for instance in observed {
            self.report(&instance, &mut pass).await?;
            if matches!(instance.health, Health::Exited(_)) {
                continue;
            }
            by_deployment
                .entry((instance.tenant_id, instance.deployment_id))
                .or_default()
                .push(instance);
        }
        // Only this runtime's deployments: another runtime's are another reconciler's.
        let name = self.runtime.name();
        let desired: HashMap<(Uuid, Uuid), Deployment> = self
            .directory
            .all()
            .into_iter()
            .filter(|(_, d)| d.spec.runtime == name)
            .collect();
        // A declarative runtime (Kubernetes) keeps the replicas itself: it is handed the
        // desired state whole, and its own autoscaler's decisions go on the log.
        let mut declared: Vec<Declared> = Vec::with_capacity(desired.len());
        if self.runtime.declarative() {
            for (key, d) in &desired {
                let removed = d.status == Status::Decommissioned;
                let secrets = if removed {
                    BTreeMap::new()
                } else {
                    match self.secrets_of(*key, d).await {
                        Some(s) => s,
                        None => continue,
                    }
                };
                declared.push(Declared {
                    target: Target {
                        tenant_id: key.0,
                        deployment_id: key.1,
                        generation: d.generation,
                        spec: d.spec.clone(),
                        secrets,
                    },
                    replicas: d.desired_replicas(),
                    removed,
                });
            }
        }
        // Opened secrets of revisions no longer wanted are dropped.
        self.opened.retain(|(key, generation), _| {
            desired
                .get(key)
                .is_some_and(|d| d.generation == *generation)
        });
        if let Some(applied) = self.runtime.declare(&declared) {
            // A terminating pod (its platform signals it) leaves the gateways' rotation.
            for i in by_deployment.values().flatten() {
                if i.stopping && !self.stopped.contains(&i.instance_id) {
                    let draining = DeploymentCommand::ObservePodDraining(pb::PodDraining {
                        instance_id: i.instance_id.to_string(),
                        reason: "terminating".into(),
                    });
                    self.observe(i, draining, format!("pod-draining-{}", i.instance_id))
                        .await?;
                    self.stopped.insert(i.instance_id);
                }
            }
            applied.await.map_err(|e| e.to_string())?;
            self.autoscaled(&desired).await?;
            return Ok(pass);
        }
        // Instances of a deployment the log does not have (any more) are stopped.
        for (key, instances) in &by_deployment {
            if !desired.contains_key(key) {
                for i in instances.iter().filter(|i| !i.stopping) {
                    if self.stop(i, "deployment gone").await {
                        pass.stopping += 1;
                    }
                }
            }
        }
        for (key, wanted) in desired {
            let instances = by_deployment.remove(&key).unwrap_or_default();
            self.converge(key, &wanted, &instances, &mut pass).await;
        }
        Ok(pass)
    }

    /// Puts an instance's creation, health and end on the log (each once).
    async fn report(&mut self, instance: &Observed, pass: &mut Pass) -> Result<(), String> {
        let id = instance.instance_id;
        if !self.reported.contains_key(&id) {
            let created = pb::PodCreated {
                instance_id: id.to_string(),
                generation: instance.generation,
                version: instance.version.clone(),
                address: instance.address.clone(),
                runtime: self.runtime.name().into(),
            };
            self.observe(
                instance,
                DeploymentCommand::ObservePodCreated(created),
                format!("pod-created-{id}"),
            )
            .await?;
            self.reported.insert(id, None);
            pass.observed += 1;
        }
        let healthy = match &instance.health {
            Health::Healthy => Some((true, String::new())),
            Health::Unhealthy(why) => Some((false, why.clone())),
            Health::Starting | Health::Exited(_) => None,
        };
        if let Some((healthy, detail)) = healthy
            && self.reported.get(&id) != Some(&Some(healthy))
        {
            let command = DeploymentCommand::ObserveHealth(pb::HealthChanged {
                instance_id: id.to_string(),
                healthy,
                detail,
            });
            self.observe(instance, command, Uuid::now_v7().to_string())
                .await?;
            self.reported.insert(id, Some(healthy));
            pass.observed += 1;
            if healthy {
                self.backoff
                    .remove(&(instance.tenant_id, instance.deployment_id));
            }
        }
        if let Health::Exited(how) = &instance.health {
            let ours = self.stopped.contains(&id) || instance.stopping;
            let deleted = pb::PodDeleted {
                instance_id: id.to_string(),
                reason: if ours { "stopped" } else { "exited" }.into(),
                detail: how.clone(),
            };
            self.observe(
                instance,
                DeploymentCommand::ObservePodDeleted(deleted),
                format!("pod-deleted-{id}"),
            )
            .await?;
            if !ours {
                tracing::warn!(instance = %id, how = %how, "an instance exited; it will be replaced");
                let b = self
                    .backoff
                    .entry((instance.tenant_id, instance.deployment_id))
                    .or_default();
                let delay = FIRST_BACKOFF
                    .saturating_mul(1 << b.crashes.min(10))
                    .min(MAX_BACKOFF);
                b.crashes += 1;
                b.not_before = Some(Instant::now() + delay);
            }
            self.runtime.forget(id);
            self.reported.remove(&id);
            self.stopped.remove(&id);
            pass.observed += 1;
        }
        Ok(())
    }

    /// Puts the counts a declarative runtime's autoscaler chose on the log, for deployments
    /// running with autoscaling on; the aggregate drops a decision that no longer applies.
    async fn autoscaled(&self, desired: &HashMap<(Uuid, Uuid), Deployment>) -> Result<(), String> {
        for scaled in self.runtime.scaled() {
            let Some(d) = desired.get(&(scaled.tenant_id, scaled.deployment_id)) else {
                continue;
            };
            let autoscaling = d.spec.autoscaling.as_ref().is_some_and(|a| a.enabled);
            if !autoscaling || d.status != Status::Running || d.spec.replicas == scaled.replicas {
                continue;
            }
            let triggered = pb::AutoscalingTriggered {
                from_replicas: d.spec.replicas,
                to_replicas: scaled.replicas,
                cpu_percent: scaled.cpu_percent,
            };
            let address = deployment::address(scaled.tenant_id, scaled.deployment_id)
                .map_err(|e| e.to_string())?;
            // Named after the state it was decided on, so a retry appends it once.
            let command_id = format!(
                "autoscaled-{}-{}-{}",
                scaled.deployment_id, d.position, scaled.replicas
            );
            self.deployments
                .execute(
                    &address,
                    &DeploymentCommand::Autoscale(triggered),
                    &meta(command_id),
                )
                .await
                .map_err(|e| format!("{e:?}"))?;
            tracing::info!(tenant_id = %scaled.tenant_id, deployment = %scaled.deployment_id, from = d.spec.replicas, to = scaled.replicas, "autoscaling triggered by the runtime");
        }
        Ok(())
    }

    /// Takes an instance out of the gateways' rotation (`pod.draining` on the log), then,
    /// after the deregistration delay if it was in one, stops it on a task of its own (a
    /// draining instance must not hold up every other deployment). False when the log could
    /// not be written: the next pass tries again.
    async fn stop(&mut self, instance: &Observed, reason: &str) -> bool {
        let id = instance.instance_id;
        if self.stopped.contains(&id) {
            return false;
        }
        let draining = DeploymentCommand::ObservePodDraining(pb::PodDraining {
            instance_id: id.to_string(),
            reason: reason.into(),
        });
        if let Err(e) = self
            .observe(instance, draining, format!("pod-draining-{id}"))
            .await
        {
            tracing::warn!(instance = %id, error = %e, "could not announce a drain; not stopping yet");
            return false;
        }
        self.stopped.insert(id);
        let runtime = self.runtime.clone();
        let grace = self.grace;
        // Only a healthy instance may be in a gateway's rotation.
        let delay = if instance.health == Health::Healthy {
            self.deregister_delay
        } else {
            Duration::ZERO
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Err(e) = runtime.stop(id, grace).await {
                tracing::warn!(instance = %id, error = %e, "stopping an instance failed");
            }
        });
        true
    }

    async fn converge(
        &mut self,
        key: (Uuid, Uuid),
        wanted: &Deployment,
        instances: &[Observed],
        pass: &mut Pass,
    ) {
        let target = wanted.desired_replicas();
        // Announced on the log as draining (by this reconciler before a restart): on its way
        // out of the gateways' rotation, so it goes.
        for i in instances {
            let announced = wanted
                .pods
                .get(&i.instance_id.to_string())
                .is_some_and(|p| p.draining);
            if announced && !i.stopping && self.stop(i, "draining").await {
                pass.stopping += 1;
            }
        }
        let live: Vec<&Observed> = instances
            .iter()
            .filter(|i| !i.stopping && !self.stopped.contains(&i.instance_id))
            .collect();
        // Liveness: an instance that was healthy and stopped answering is replaced.
        for i in &live {
            if matches!(i.health, Health::Unhealthy(_)) && self.stop(i, "failed its probes").await {
                pass.stopping += 1;
            }
        }
        let live: Vec<&Observed> = live
            .into_iter()
            .filter(|i| !matches!(i.health, Health::Unhealthy(_)))
            .collect();
        let (current, old): (Vec<&Observed>, Vec<&Observed>) =
            live.iter().partition(|i| i.generation == wanted.generation);
        let healthy =
            |set: &[&Observed]| set.iter().filter(|i| i.health == Health::Healthy).count();
        let ready = healthy(&current) + healthy(&old);

        let why = match wanted.status {
            crate::domain::Status::Drained => "drained",
            crate::domain::Status::Decommissioned => "decommissioned",
            _ => "scaled down",
        };
        // Too many of the current revision: stop the surplus, the least ready first.
        if current.len() > target {
            let mut surplus: Vec<&Observed> = current.clone();
            surplus.sort_by_key(|i| (i.health == Health::Healthy, i.instance_id));
            for i in surplus.into_iter().take(current.len() - target) {
                if self.stop(i, why).await {
                    pass.stopping += 1;
                }
            }
        }
        // Old revisions go once the ready instances exceed the target (never below it),
        // and all at once when nothing should run.
        let mut spare = ready.saturating_sub(target);
        let mut old_sorted = old.clone();
        old_sorted.sort_by_key(|i| (i.health == Health::Healthy, i.instance_id));
        let reason = if target == 0 {
            why
        } else {
            "replaced by a new revision"
        };
        for i in old_sorted {
            let counts = i.health == Health::Healthy;
            if (target == 0 || !counts || spare > 0) && self.stop(i, reason).await {
                if counts {
                    spare = spare.saturating_sub(1);
                }
                pass.stopping += 1;
            }
        }
        // Start the current revision up to the target, one over it at most while old ones run.
        let surge_room = (target + 1).saturating_sub(live.len());
        let missing = target.saturating_sub(current.len()).min(surge_room);
        if missing == 0 {
            return;
        }
        if let Some(not_before) = self.backoff.get(&key).and_then(|b| b.not_before)
            && Instant::now() < not_before
        {
            return;
        }
        let Some(secrets) = self.secrets_of(key, wanted).await else {
            return;
        };
        let target = Target {
            tenant_id: key.0,
            deployment_id: key.1,
            generation: wanted.generation,
            spec: wanted.spec.clone(),
            secrets,
        };
        for _ in 0..missing {
            match self.runtime.start(&target).await {
                Ok(started) => {
                    pass.started += 1;
                    // Reported at once: the log hears of it before its first probe.
                    if let Err(e) = self.report(&started, pass).await {
                        tracing::warn!(error = %e, "reporting a new instance failed; next pass retries");
                    }
                }
                Err(e) => {
                    tracing::warn!(tenant_id = %key.0, deployment = %key.1, error = %e, "starting an instance failed");
                    let b = self.backoff.entry(key).or_default();
                    b.crashes += 1;
                    b.not_before = Some(Instant::now() + MAX_BACKOFF.min(FIRST_BACKOFF * 8));
                    break;
                }
            }
        }
    }
}
