//! The read model's state as the API answers it: never a credential, sealed or not.

use chrono::{DateTime, Utc};
use tenantry_eventstore::time::to_proto;
use tenantry_proto::sync::v1 as api;
use uuid::Uuid;

use crate::domain::Integration;

pub fn integration(tenant: Uuid, s: &Integration) -> api::Integration {
    api::Integration {
        integration_id: s.id.map(|i| i.to_string()).unwrap_or_default(),
        tenant_id: tenant.to_string(),
        name: s.name.clone(),
        r#type: s.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        config: Some(s.config.clone()),
        schedule: Some(s.schedule.to_proto()),
        enabled: s.enabled,
        credential_names: s.credential_names.clone(),
        cursors: s.cursors.clone().into_iter().collect(),
        failure_streak: s.failure_streak,
        created_at: s.created_at.map(to_proto),
        last_success_at: s.last_success_at.map(to_proto),
        records_synced: s.records_synced,
        last_error: s.last_error.clone(),
        disabled_reason: s.disabled_reason.clone(),
    }
}

/// Health from the last success: within 2 h healthy, within a day warning, else critical.
/// An integration that never succeeded is measured from its creation.
pub fn health(s: &Integration, now: DateTime<Utc>) -> &'static str {
    let since = s.last_success_at.or(s.created_at).unwrap_or(now);
    let age = now - since;
    if age <= chrono::Duration::hours(2) {
        "healthy"
    } else if age <= chrono::Duration::days(1) {
        "warning"
    } else {
        "critical"
    }
}

fn rank(health: &str) -> u8 {
    match health {
        "healthy" => 0,
        "warning" => 1,
        _ => 2,
    }
}

pub fn status(s: &Integration, now: DateTime<Utc>) -> api::IntegrationStatus {
    let status = if !s.enabled {
        "disabled"
    } else if s.failure_streak > 0 {
        "failing"
    } else {
        "active"
    };
    let next = s.next_run_at();
    api::IntegrationStatus {
        integration_id: s.id.map(|i| i.to_string()).unwrap_or_default(),
        r#type: s.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
        name: s.name.clone(),
        status: status.into(),
        last_sync: s.last_success_at.map(to_proto),
        next_sync: next.map(to_proto),
        records_synced: s.records_synced,
        errors: s.failure_streak,
        sync_duration_minutes: s.last_duration_secs as f64 / 60.0,
        health: health(s, now).into(),
    }
}

/// The worst health among enabled integrations (`healthy` when there are none).
pub fn overall<'a>(statuses: impl IntoIterator<Item = &'a api::IntegrationStatus>) -> String {
    statuses
        .into_iter()
        .filter(|s| s.status != "disabled")
        .map(|s| s.health.as_str())
        .max_by_key(|h| rank(h))
        .unwrap_or("healthy")
        .to_owned()
}
