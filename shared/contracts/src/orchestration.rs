//! Orchestration's contract: a tenant's `deployment` (a dedicated instance; id = deployment
//! id): its desired state and what the runtime observed of its instances. Commands and
//! observations share the deployment's subject, so `evt.<tenant>.deployment.*` is a tenant's
//! whole orchestration history in order (the WebSocket feed and the gateway follow it).

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

/// A deployment's events.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum DeploymentEvent {
    Provisioned(pb::DeploymentProvisioned),
    Scaled(pb::DeploymentScaled),
    AutoscalingSet(pb::DeploymentAutoscalingSet),
    Updated(pb::DeploymentUpdated),
    Drained(pb::DeploymentDrained),
    Resumed(pb::DeploymentResumed),
    Decommissioned(pb::DeploymentDecommissioned),
    PodCreated(pb::PodCreated),
    PodDeleted(pb::PodDeleted),
    PodDraining(pb::PodDraining),
    HealthChanged(pb::HealthChanged),
    AutoscalingTriggered(pb::AutoscalingTriggered),
}

event_table!(DeploymentEvent in "deployment" {
    Provisioned => "deployment.provisioned.v1": pb::DeploymentProvisioned,
    Scaled => "deployment.scaled.v1": pb::DeploymentScaled,
    AutoscalingSet => "deployment.autoscaling_set.v1": pb::DeploymentAutoscalingSet,
    Updated => "deployment.updated.v1": pb::DeploymentUpdated,
    Drained => "deployment.drained.v1": pb::DeploymentDrained,
    Resumed => "deployment.resumed.v1": pb::DeploymentResumed,
    Decommissioned => "deployment.decommissioned.v1": pb::DeploymentDecommissioned,
    PodCreated => "deployment.pod_created.v1": pb::PodCreated,
    PodDeleted => "deployment.pod_deleted.v1": pb::PodDeleted,
    PodDraining => "deployment.pod_draining.v1": pb::PodDraining,
    HealthChanged => "deployment.health_changed.v1": pb::HealthChanged,
    AutoscalingTriggered => "deployment.autoscaling_triggered.v1": pb::AutoscalingTriggered,
});

impl DeploymentEvent {
    /// The event's name on the orchestration feed: the seed's names (`pod.created`,
    /// `pod.deleted`, `health.changed`, `deployment.updated`, `autoscaling.triggered`), and
    /// `deployment.<what>` for the rest of the lifecycle (and `pod.draining`: an instance about to
    /// stop, out of the gateways' rotation).
    pub fn feed_type(&self) -> &'static str {
        match self {
            Self::Provisioned(_) => "deployment.provisioned",
            Self::Scaled(_) => "deployment.scaled",
            Self::AutoscalingSet(_) => "deployment.autoscaling_set",
            Self::Updated(_) => "deployment.updated",
            Self::Drained(_) => "deployment.drained",
            Self::Resumed(_) => "deployment.resumed",
            Self::Decommissioned(_) => "deployment.decommissioned",
            Self::PodCreated(_) => "pod.created",
            Self::PodDeleted(_) => "pod.deleted",
            Self::PodDraining(_) => "pod.draining",
            Self::HealthChanged(_) => "health.changed",
            Self::AutoscalingTriggered(_) => "autoscaling.triggered",
        }
    }
}
