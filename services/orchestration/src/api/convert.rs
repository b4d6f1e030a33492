//! Domain state to API messages.

use tenantry_eventstore::time;
use tenantry_proto::orchestration::v1 as api;
use uuid::Uuid;

use crate::domain::{Deployment, Status};

pub fn status(s: Status) -> api::DeploymentStatus {
    match s {
        Status::Absent => api::DeploymentStatus::Unspecified,
        Status::Running => api::DeploymentStatus::Running,
        Status::Drained => api::DeploymentStatus::Drained,
        Status::Decommissioned => api::DeploymentStatus::Decommissioned,
    }
}

pub fn deployment(tenant: Uuid, id: Uuid, d: &Deployment) -> api::Deployment {
    api::Deployment {
        deployment_id: id.to_string(),
        tenant_id: tenant.to_string(),
        spec: Some(crate::secrets::redacted(d.spec.clone())),
        status: status(d.status) as i32,
        generation: d.generation,
        instances: d
            .pods
            .iter()
            .map(|(instance_id, pod)| api::Instance {
                instance_id: instance_id.clone(),
                generation: pod.generation,
                version: pod.version.clone(),
                address: pod.address.clone(),
                healthy: pod.healthy,
                draining: pod.draining,
                created_at: Some(time::to_proto(pod.created_at)),
            })
            .collect(),
        created_at: Some(time::to_proto(d.created_at)),
        updated_at: Some(time::to_proto(d.updated_at)),
        position: d.position,
    }
}
