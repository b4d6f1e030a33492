//! The feed's JSON: one message per event, `{type, tenant_id, deployment_id, position, at,
//! data}`, `data` holding the event's fields a dashboard shows.

use base64::Engine as _;
use serde_json::{Value, json};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_eventstore::StoredMessage;
use tenantry_proto::events::v1 as pb;

fn spec(s: Option<&pb::DeploymentSpec>) -> Value {
    let Some(s) = s else { return Value::Null };
    json!({
        "name": s.name,
        "runtime": s.runtime,
        "image": s.image,
        "version": s.version,
        "replicas": s.replicas,
        // Names only: values stay out of browsers' memory and logs.
        "env": s.env.keys().collect::<Vec<_>>(),
        "secret_env": s.secret_env.keys().collect::<Vec<_>>(),
        "autoscaling": s.autoscaling.as_ref().map(autoscaling),
    })
}

fn autoscaling(a: &pb::AutoscalingSpec) -> Value {
    json!({
        "enabled": a.enabled,
        "min_replicas": a.min_replicas,
        "max_replicas": a.max_replicas,
        "target_cpu_percent": a.target_cpu_percent,
    })
}

pub fn data(event: &DeploymentEvent) -> Value {
    match event {
        DeploymentEvent::Provisioned(p) => json!({ "spec": spec(p.spec.as_ref()) }),
        DeploymentEvent::Scaled(s) => json!({ "replicas": s.replicas, "previous": s.previous }),
        DeploymentEvent::AutoscalingSet(a) => {
            json!({ "autoscaling": a.autoscaling.as_ref().map(autoscaling) })
        }
        DeploymentEvent::Updated(u) => json!({
            "spec": spec(u.spec.as_ref()),
            "previous_version": u.previous_version,
            "generation": u.generation,
        }),
        DeploymentEvent::Drained(d) => json!({ "reason": d.reason }),
        DeploymentEvent::Resumed(_) => json!({}),
        DeploymentEvent::Decommissioned(d) => json!({
            "reason": d.reason,
            "saved_spec": spec(d.saved_spec.as_ref()),
        }),
        DeploymentEvent::PodCreated(c) => json!({
            "instance_id": c.instance_id,
            "generation": c.generation,
            "version": c.version,
            "address": c.address,
            "runtime": c.runtime,
        }),
        DeploymentEvent::PodDeleted(d) => json!({
            "instance_id": d.instance_id,
            "reason": d.reason,
            "detail": d.detail,
        }),
        DeploymentEvent::PodDraining(d) => json!({
            "instance_id": d.instance_id,
            "reason": d.reason,
        }),
        DeploymentEvent::HealthChanged(h) => json!({
            "instance_id": h.instance_id,
            "healthy": h.healthy,
            "detail": h.detail,
        }),
        DeploymentEvent::AutoscalingTriggered(t) => json!({
            "from_replicas": t.from_replicas,
            "to_replicas": t.to_replicas,
            "cpu_percent": t.cpu_percent,
        }),
    }
}

/// The feed's messages for one log message (one per event, in order); events that are not a
/// deployment's are not the feed's.
pub fn texts(message: &StoredMessage) -> Vec<String> {
    let Ok(events) = message.events::<DeploymentEvent>() else {
        return vec![];
    };
    events
        .iter()
        .map(|stored| {
            json!({
                "type": stored.event.feed_type(),
                "tenant_id": stored.meta.tenant_id,
                "deployment_id": stored.meta.aggregate_id,
                "position": message.position,
                "at": stored.meta.occurred_at.to_rfc3339(),
                "data": data(&stored.event),
            })
            .to_string()
        })
        .collect()
}

/// When an access token expires (its `exp`). Read without checking the signature: only
/// after the token was verified, to know when to stop trusting it. An API key (`tk_…`) has
/// no expiry here.
pub fn expiry(token: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    chrono::DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}
