//! A tenant's creation opens its subscription: a 30-day trial on the plan of its type
//! (trial, business, enterprise), ending with the tenant's own trial when it has one.
//!
//! A projection of tenant events whose effect is a command: the command id is derived from
//! the tenant, so a batch applied again (after a crash before its checkpoint) opens nothing
//! twice.

use chrono::Duration;
use sqlx::PgConnection;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::{
    CommandMeta, EventPayload, Projection, ProjectionError, Repository, StoredMessage, subject,
    time,
};
use tenantry_kit::db::{Scope, set_scope};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::subscription::{self, Subscription, SubscriptionCommand};
use crate::projection::queries;

pub const NAME: &str = "billing_trials";
/// A trial's length when the tenant has none of its own (business, enterprise).
pub const TRIAL_DAYS: i64 = 30;

pub struct TrialsProjection {
    pub subscriptions: Repository<Subscription>,
}

/// The catalog plan a tenant of `kind` starts on.
pub fn plan_for(kind: i32) -> &'static str {
    match pb::TenantType::try_from(kind) {
        Ok(pb::TenantType::Enterprise) => "enterprise",
        Ok(pb::TenantType::Business) => "business",
        _ => "trial",
    }
}

impl Projection for TrialsProjection {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        subject::type_filter(root, TenantEvent::AGGREGATE_TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        set_scope(tx, Scope::Platform).await?;
        for message in messages {
            for stored in message.events::<TenantEvent>()? {
                let TenantEvent::Created(created) = &stored.event else {
                    continue;
                };
                let Ok(tenant_id) = Uuid::try_parse(&stored.meta.tenant_id) else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO tenant_names (tenant_id, name) VALUES ($1, $2)
                     ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name",
                )
                .bind(tenant_id)
                .bind(&created.name)
                .execute(&mut *tx)
                .await?;
                let name = plan_for(created.r#type);
                let plan = queries::plan(&mut *tx, name)
                    .await?
                    .ok_or_else(|| ProjectionError::Other(format!("plan {name} is not defined")))?;
                let created_at = stored.meta.occurred_at;
                let trial_ends_at = match &created.trial_ends_at {
                    Some(t) => time::from_proto(Some(t)),
                    None => created_at + Duration::days(TRIAL_DAYS),
                };
                let meta = CommandMeta {
                    command_id: format!("billing-open-{tenant_id}"),
                    actor: "system:billing".into(),
                    correlation_id: stored.meta.correlation_id.clone(),
                    occurred_at: created_at,
                    traceparent: message.traceparent.clone(),
                    fingerprint: None,
                };
                let address = subscription::address(tenant_id)
                    .map_err(|e| ProjectionError::Other(e.to_string()))?;
                let open = SubscriptionCommand::Open {
                    plan,
                    trial_ends_at: Some(trial_ends_at),
                    billing_email: String::new(),
                    now: created_at,
                };
                self.subscriptions
                    .execute(&address, &open, &meta)
                    .await
                    .map_err(|e| ProjectionError::Other(format!("opening {tenant_id}: {e}")))?;
            }
        }
        Ok(())
    }
}
