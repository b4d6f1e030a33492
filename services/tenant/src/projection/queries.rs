//! Reads of the `tenants` read model, always inside an RLS-scoped transaction.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::types::Json;
use tenantry_kit::db::{Scope, scoped_tx};
use uuid::Uuid;

use crate::domain::Tenant;

/// The tenant, if the scope may see it.
pub async fn get(pool: &PgPool, scope: Scope, id: Uuid) -> Result<Option<Tenant>, sqlx::Error> {
    let mut tx = scoped_tx(pool, scope).await?;
    let row: Option<(Json<Tenant>,)> =
        sqlx::query_as("SELECT state FROM tenants WHERE tenant_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(row.map(|(t,)| t.0))
}

/// A page of the tenants the scope may see, by id, after `after`.
pub async fn list(
    pool: &PgPool,
    scope: Scope,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Tenant>, sqlx::Error> {
    let mut tx = scoped_tx(pool, scope).await?;
    let rows: Vec<(Json<Tenant>,)> = sqlx::query_as(
        "SELECT state FROM tenants WHERE ($1::uuid IS NULL OR tenant_id > $1) ORDER BY tenant_id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|(t,)| t.0).collect())
}

/// Trials whose end has passed and that have not expired yet (platform scope).
pub async fn due_trials(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Platform).await?;
    let rows: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT tenant_id FROM tenants WHERE kind = 'trial' AND NOT trial_expired AND trial_ends_at <= $1 ORDER BY trial_ends_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
