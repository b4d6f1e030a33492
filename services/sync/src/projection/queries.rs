//! What the API reads from the read model, always inside the caller's RLS scope.

use sqlx::PgPool;
use tenantry_kit::db::{Scope, scoped_tx};
use uuid::Uuid;

use crate::domain::Integration;

/// The tenant's integrations, oldest first.
pub async fn integrations(pool: &PgPool, tenant: Uuid) -> Result<Vec<Integration>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let rows: Vec<(sqlx::types::Json<Integration>,)> = sqlx::query_as(
        "SELECT state FROM integrations WHERE tenant_id = $1 ORDER BY integration_id",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|r| r.0.0).collect())
}

/// One integration of the tenant.
pub async fn integration(
    pool: &PgPool,
    tenant: Uuid,
    id: Uuid,
) -> Result<Option<Integration>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let row: Option<(sqlx::types::Json<Integration>,)> = sqlx::query_as(
        "SELECT state FROM integrations WHERE tenant_id = $1 AND integration_id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.map(|r| r.0.0))
}

/// One alert as the API lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub alert_id: String,
    pub integration_id: Uuid,
    pub kind: String,
    pub message: String,
    pub raised_at: chrono::DateTime<chrono::Utc>,
}

/// The tenant's alerts, newest first (at most `limit`).
pub async fn alerts(pool: &PgPool, tenant: Uuid, limit: i64) -> Result<Vec<AlertRow>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let rows = sqlx::query_as(
        "SELECT alert_id, integration_id, kind, message, raised_at FROM alerts
         WHERE tenant_id = $1 ORDER BY raised_at DESC, alert_id DESC LIMIT $2",
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}
