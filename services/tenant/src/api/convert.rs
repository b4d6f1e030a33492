//! Read-model state to API messages.

use tenantry_eventstore::time::to_proto;
use tenantry_proto::tenant::v1 as api;

use crate::domain::{Status, Tenant};

pub fn tenant(t: &Tenant) -> api::Tenant {
    api::Tenant {
        tenant_id: t.id.map(|id| id.to_string()).unwrap_or_default(),
        name: t.name.clone(),
        slug: t.slug.clone(),
        r#type: t.kind.to_proto() as i32,
        status: status(t.status) as i32,
        settings: t.settings.as_ref().map(|s| s.to_proto()),
        feature_flags: t
            .feature_flags
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        domains: t
            .domains
            .iter()
            .map(|d| api::Domain {
                name: d.name.clone(),
                verified: d.verified,
                verification_token: d.verification_token.clone(),
            })
            .collect(),
        trial_ends_at: t.trial_ends_at.map(to_proto),
        trial_expired: t.trial_expired,
        created_at: Some(to_proto(t.created_at)),
        updated_at: Some(to_proto(t.updated_at)),
        version: t.version,
        suspension_reason: t.suspension_reason.clone(),
    }
}

fn status(s: Status) -> api::TenantStatus {
    match s {
        Status::Active => api::TenantStatus::Active,
        Status::Suspended => api::TenantStatus::Suspended,
        Status::Decommissioning => api::TenantStatus::Decommissioning,
    }
}
