//! A tenant's deployment (id = deployment id): its spec and revision, whether it runs, is
//! drained or is decommissioned, and the instances its runtime reported.
//!
//! Two kinds of command: what a tenant asks (provision, scale, set autoscaling, update,
//! drain, resume, decommission), checked against the state and the plan; and what the
//! reconciler observed (an instance created, deleted, healthy or not), which are facts and
//! are only deduplicated (an observation already on the log decides nothing, so a reconciler
//! that retries, or restarts and observes again, appends each fact once).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_eventstore::{Aggregate, AggregateAddress, EventMeta, InvalidToken};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::{DomainError, spec};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Status {
    /// Not provisioned yet.
    #[default]
    Absent,
    Running,
    /// Every instance stops; the spec is kept for a resume.
    Drained,
    /// Gone; its last spec is on the log.
    Decommissioned,
}

/// An instance the runtime reported and has not reported gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub generation: u64,
    pub version: String,
    pub address: String,
    pub healthy: bool,
    /// Taken out of the gateways' rotation: it is being stopped.
    pub draining: bool,
    pub created_at: DateTime<Utc>,
}

/// A deployment as its events made it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deployment {
    pub status: Status,
    pub spec: pb::DeploymentSpec,
    /// The spec's revision: 1 when provisioned, +1 per update. Instances of an older one are
    /// replaced by a rolling update.
    pub generation: u64,
    pub pods: BTreeMap<String, Pod>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Position of its last event.
    pub position: u64,
}

#[derive(Debug, Clone)]
pub enum DeploymentCommand {
    /// `dedicated_instances`: how many deployments the tenant's plan allows (0: none);
    /// `existing`: how many it has that are not decommissioned (other than this one).
    Provision {
        deployment_id: Uuid,
        spec: pb::DeploymentSpec,
        dedicated_instances: u32,
        existing: usize,
    },
    Scale {
        replicas: i32,
    },
    SetAutoscaling(pb::AutoscalingSpec),
    Update(pb::DeploymentSpec),
    Drain {
        reason: String,
    },
    Resume,
    Decommission {
        reason: String,
    },
    /// The autoscaler's decision from measured CPU: `from_replicas` is the count it measured
    /// at. Decides nothing once it no longer applies (autoscaling turned off, the count
    /// changed meanwhile, outside the range, not running), so a stale decision is dropped.
    Autoscale(pb::AutoscalingTriggered),
    /// Observations of the reconciler.
    ObservePodCreated(pb::PodCreated),
    ObservePodDeleted(pb::PodDeleted),
    /// The reconciler is about to stop an instance: gateways take it out of their rotation
    /// first.
    ObservePodDraining(pb::PodDraining),
    ObserveHealth(pb::HealthChanged),
}

/// Where deployment `id` of `tenant_id` lives.
pub fn address(tenant_id: Uuid, id: Uuid) -> Result<AggregateAddress, InvalidToken> {
    AggregateAddress::of::<Deployment>(tenant_id.to_string(), id.to_string())
}

impl Deployment {
    pub fn exists(&self) -> bool {
        self.status != Status::Absent
    }

    /// Instances it should have now: 0 unless running.
    pub fn desired_replicas(&self) -> usize {
        match self.status {
            Status::Running => usize::try_from(self.spec.replicas).unwrap_or(0),
            _ => 0,
        }
    }

    /// A command a tenant sent: the deployment must exist and not be decommissioned.
    fn live(&self) -> Result<(), DomainError> {
        match self.status {
            Status::Absent => Err(DomainError::NotFound("deployment".into())),
            Status::Decommissioned => Err(DomainError::Precondition(
                "the deployment is decommissioned".into(),
            )),
            Status::Running | Status::Drained => Ok(()),
        }
    }

    fn provision(
        &self,
        deployment_id: Uuid,
        spec: &pb::DeploymentSpec,
        dedicated_instances: u32,
        existing: usize,
    ) -> Result<Vec<DeploymentEvent>, DomainError> {
        let spec = spec::normalized(spec.clone());
        spec::validate(&spec)?;
        if self.exists() {
            // A retry of the same provisioning is answered as done; anything else is a clash.
            return if self.generation == 1 && self.spec == spec {
                Ok(vec![])
            } else {
                Err(DomainError::AlreadyExists("deployment".into()))
            };
        }
        if dedicated_instances == 0 {
            return Err(DomainError::Precondition(
                "the tenant's plan does not include dedicated instances".into(),
            ));
        }
        if existing >= usize::try_from(dedicated_instances).unwrap_or(usize::MAX) {
            return Err(DomainError::limit(
                "dedicated_instances",
                format!("the plan allows {dedicated_instances} dedicated deployments"),
            ));
        }
        Ok(vec![DeploymentEvent::Provisioned(
            pb::DeploymentProvisioned {
                deployment_id: deployment_id.to_string(),
                spec: Some(spec),
            },
        )])
    }

    fn update(&self, spec: &pb::DeploymentSpec) -> Result<Vec<DeploymentEvent>, DomainError> {
        self.live()?;
        let spec = spec::normalized(spec.clone());
        spec::validate(&spec)?;
        if spec.runtime != self.spec.runtime {
            return Err(DomainError::invalid(
                "spec.runtime",
                "cannot change; provision a new deployment on the other runtime",
            ));
        }
        if spec == self.spec {
            return Ok(vec![]);
        }
        Ok(vec![DeploymentEvent::Updated(pb::DeploymentUpdated {
            spec: Some(spec),
            previous_version: self.spec.version.clone(),
            generation: self.generation + 1,
        })])
    }

    fn scale(&self, replicas: i32) -> Result<Vec<DeploymentEvent>, DomainError> {
        self.live()?;
        spec::replicas("replicas", replicas)?;
        if let Some(a) = self.spec.autoscaling.as_ref().filter(|a| a.enabled)
            && !(a.min_replicas..=a.max_replicas).contains(&replicas)
        {
            return Err(DomainError::invalid(
                "replicas",
                format!(
                    "autoscaling keeps it within {}-{}; change the autoscaling range instead",
                    a.min_replicas, a.max_replicas
                ),
            ));
        }
        if replicas == self.spec.replicas {
            return Ok(vec![]);
        }
        Ok(vec![DeploymentEvent::Scaled(pb::DeploymentScaled {
            replicas,
            previous: self.spec.replicas,
        })])
    }

    fn set_autoscaling(
        &self,
        autoscaling: &pb::AutoscalingSpec,
    ) -> Result<Vec<DeploymentEvent>, DomainError> {
        self.live()?;
        spec::autoscaling(autoscaling)?;
        let normalized = if autoscaling.enabled {
            *autoscaling
        } else {
            pb::AutoscalingSpec::default()
        };
        if self.spec.autoscaling.as_ref() == Some(&normalized) {
            return Ok(vec![]);
        }
        let mut events = vec![DeploymentEvent::AutoscalingSet(
            pb::DeploymentAutoscalingSet {
                autoscaling: Some(normalized),
            },
        )];
        // The replica count is brought into the new range at once, as an HPA would.
        if normalized.enabled {
            let clamped = self
                .spec
                .replicas
                .clamp(normalized.min_replicas, normalized.max_replicas);
            if clamped != self.spec.replicas {
                events.push(DeploymentEvent::Scaled(pb::DeploymentScaled {
                    replicas: clamped,
                    previous: self.spec.replicas,
                }));
            }
        }
        Ok(events)
    }

    fn autoscale(&self, t: &pb::AutoscalingTriggered) -> Vec<DeploymentEvent> {
        let applies = self.status == Status::Running
            && t.from_replicas == self.spec.replicas
            && t.to_replicas != t.from_replicas
            && self.spec.autoscaling.as_ref().is_some_and(|a| {
                a.enabled && (a.min_replicas..=a.max_replicas).contains(&t.to_replicas)
            });
        if applies {
            vec![DeploymentEvent::AutoscalingTriggered(*t)]
        } else {
            vec![]
        }
    }

    fn observe(&self, command: &DeploymentCommand) -> Vec<DeploymentEvent> {
        if !self.exists() {
            return vec![];
        }
        match command {
            DeploymentCommand::ObservePodCreated(created) => {
                if self.pods.contains_key(&created.instance_id) {
                    vec![]
                } else {
                    vec![DeploymentEvent::PodCreated(created.clone())]
                }
            }
            DeploymentCommand::ObservePodDeleted(deleted) => {
                if self.pods.contains_key(&deleted.instance_id) {
                    vec![DeploymentEvent::PodDeleted(deleted.clone())]
                } else {
                    vec![]
                }
            }
            DeploymentCommand::ObservePodDraining(draining) => {
                match self.pods.get(&draining.instance_id) {
                    Some(pod) if !pod.draining => {
                        vec![DeploymentEvent::PodDraining(draining.clone())]
                    }
                    _ => vec![],
                }
            }
            DeploymentCommand::ObserveHealth(health) => match self.pods.get(&health.instance_id) {
                Some(pod) if pod.healthy != health.healthy => {
                    vec![DeploymentEvent::HealthChanged(health.clone())]
                }
                _ => vec![],
            },
            _ => vec![],
        }
    }
}

impl Aggregate for Deployment {
    type Command = DeploymentCommand;
    type Event = DeploymentEvent;
    type Error = DomainError;

    fn decide(&self, command: &DeploymentCommand) -> Result<Vec<DeploymentEvent>, DomainError> {
        match command {
            DeploymentCommand::Provision {
                deployment_id,
                spec,
                dedicated_instances,
                existing,
            } => self.provision(*deployment_id, spec, *dedicated_instances, *existing),
            DeploymentCommand::Scale { replicas } => self.scale(*replicas),
            DeploymentCommand::SetAutoscaling(a) => self.set_autoscaling(a),
            DeploymentCommand::Update(spec) => self.update(spec),
            DeploymentCommand::Drain { reason } => {
                self.live()?;
                Ok(match self.status {
                    Status::Drained => vec![],
                    _ => vec![DeploymentEvent::Drained(pb::DeploymentDrained {
                        reason: reason.clone(),
                    })],
                })
            }
            DeploymentCommand::Resume => {
                self.live()?;
                Ok(match self.status {
                    Status::Drained => vec![DeploymentEvent::Resumed(pb::DeploymentResumed {})],
                    _ => vec![],
                })
            }
            DeploymentCommand::Decommission { reason } => match self.status {
                Status::Absent => Err(DomainError::NotFound("deployment".into())),
                Status::Decommissioned => Ok(vec![]),
                Status::Running | Status::Drained => Ok(vec![DeploymentEvent::Decommissioned(
                    pb::DeploymentDecommissioned {
                        saved_spec: Some(self.spec.clone()),
                        reason: reason.clone(),
                    },
                )]),
            },
            DeploymentCommand::Autoscale(t) => Ok(self.autoscale(t)),
            DeploymentCommand::ObservePodCreated(_)
            | DeploymentCommand::ObservePodDeleted(_)
            | DeploymentCommand::ObservePodDraining(_)
            | DeploymentCommand::ObserveHealth(_) => Ok(self.observe(command)),
        }
    }

    fn evolve(&mut self, event: &DeploymentEvent, meta: &EventMeta) {
        self.position = meta.position;
        self.updated_at = meta.occurred_at;
        match event {
            DeploymentEvent::Provisioned(p) => {
                self.status = Status::Running;
                self.spec = p.spec.clone().unwrap_or_default();
                self.generation = 1;
                self.created_at = meta.occurred_at;
            }
            DeploymentEvent::Scaled(s) => self.spec.replicas = s.replicas,
            DeploymentEvent::AutoscalingSet(a) => self.spec.autoscaling = a.autoscaling,
            DeploymentEvent::Updated(u) => {
                self.spec = u.spec.clone().unwrap_or_default();
                self.generation = u.generation;
            }
            DeploymentEvent::Drained(_) => self.status = Status::Drained,
            DeploymentEvent::Resumed(_) => self.status = Status::Running,
            DeploymentEvent::Decommissioned(_) => self.status = Status::Decommissioned,
            DeploymentEvent::PodCreated(c) => {
                self.pods.insert(
                    c.instance_id.clone(),
                    Pod {
                        generation: c.generation,
                        version: c.version.clone(),
                        address: c.address.clone(),
                        healthy: false,
                        draining: false,
                        created_at: meta.occurred_at,
                    },
                );
            }
            DeploymentEvent::PodDeleted(d) => {
                self.pods.remove(&d.instance_id);
            }
            DeploymentEvent::PodDraining(d) => {
                if let Some(pod) = self.pods.get_mut(&d.instance_id) {
                    pod.draining = true;
                }
            }
            DeploymentEvent::HealthChanged(h) => {
                if let Some(pod) = self.pods.get_mut(&h.instance_id) {
                    pod.healthy = h.healthy;
                }
            }
            DeploymentEvent::AutoscalingTriggered(t) => self.spec.replicas = t.to_replicas,
        }
    }
}

#[cfg(test)]
mod tests;
