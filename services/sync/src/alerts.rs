//! Alerts: raised on an integration as `integration.alert_raised.v1` (the log is where they
//! are kept; the `alerts` table lists them, see the projection), once per condition.
//!
//! - [`API_BUDGET_90`]: the tenant's provider calls today reached 90% of its plan's budget.
//! - [`STORAGE_80`]: its records reached 80% of its plan's storage.
//! - [`SYNC_LATE`]: an integration's next sync passed 6 hours ago (see the scheduler).
//!
//! The failure streak's alerts are the aggregate's own events (`integration.failing.v1` at 20,
//! an automatic `integration.disabled.v1` at 30), listed the same way.

use std::sync::Arc;

use sqlx::PgPool;
use tenantry_eventstore::{CommandMeta, ExecuteError, Repository};
use tenantry_kit::Clock;
use tenantry_kit::db::{Scope, scoped_tx};
use uuid::Uuid;

use crate::domain::integration::{self, Integration, IntegrationCommand};

pub const API_BUDGET_90: &str = "api_budget_90";
pub const STORAGE_80: &str = "storage_80";
pub const SYNC_LATE: &str = "sync_late";

/// How late a sync may be before it alerts.
pub const LATE_AFTER: chrono::Duration = chrono::Duration::hours(6);

/// Raises `kind` about `key` on the integration (nothing when it was raised for this key).
pub async fn raise(
    integrations: &Repository<Integration>,
    clock: &Arc<dyn Clock>,
    tenant: Uuid,
    id: Uuid,
    kind: &str,
    message: String,
    key: &str,
) -> Result<(), String> {
    let address = integration::address(tenant, id).map_err(|e| e.to_string())?;
    let meta = CommandMeta {
        // The same condition twice is one message (JetStream's duplicate window).
        command_id: format!("sync-alert-{id}-{kind}-{key}"),
        actor: "system:sync".into(),
        correlation_id: id.to_string(),
        occurred_at: clock.now(),
        traceparent: None,
        fingerprint: None,
    };
    let command = IntegrationCommand::RaiseAlert {
        kind: kind.into(),
        message,
        key: key.into(),
    };
    match integrations.execute(&address, &command, &meta).await {
        Ok(_) => {}
        // Gone meanwhile: nothing to raise it on.
        Err(ExecuteError::Rejected(e)) => {
            tracing::warn!(error = %e, "a sync alert was refused");
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    }
    tracing::info!(tenant_id = %tenant, integration_id = %id, kind, "sync alert raised");
    Ok(())
}

/// A tenant-wide condition: raised on `id` only if no integration of the tenant raised it for
/// this key. The mark is taken first and given back if the alert could not be recorded, so a
/// later call tries again.
#[allow(clippy::too_many_arguments)]
pub async fn raise_once_for_tenant(
    pool: &PgPool,
    integrations: &Repository<Integration>,
    clock: &Arc<dyn Clock>,
    tenant: Uuid,
    id: Uuid,
    kind: &str,
    message: String,
    key: &str,
) -> Result<(), String> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant))
        .await
        .map_err(|e| e.to_string())?;
    let marked = sqlx::query(
        "INSERT INTO alert_marks (tenant_id, kind, key) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(kind)
    .bind(key)
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?
    .rows_affected();
    if marked == 0 {
        return Ok(());
    }
    // The mark's row stays locked until the alert is recorded: a concurrent caller waits, then
    // sees it (or takes it if this one rolled back).
    raise(integrations, clock, tenant, id, kind, message, key).await?;
    tx.commit().await.map_err(|e| e.to_string())
}
