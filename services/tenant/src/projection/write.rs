//! The statements of the `tenants` projection: set-based, one per kind of write.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tenantry_eventstore::ProjectionError;
use uuid::Uuid;

use crate::domain::Tenant;

/// The stored state of `ids` that have a row.
pub async fn load(
    tx: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Tenant>, ProjectionError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, sqlx::types::Json<Tenant>)> =
        sqlx::query_as("SELECT tenant_id, state FROM tenants WHERE tenant_id = ANY($1)")
            .bind(ids)
            .fetch_all(tx)
            .await?;
    Ok(rows.into_iter().map(|(id, state)| (id, state.0)).collect())
}

/// The rows of the batch as one relation, `u`, with every column of `tenants`.
const ROWS: &str = "UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                           $7::bool[], $8::jsonb[], $9::int8[], $10::timestamptz[], $11::timestamptz[])
    AS u(tenant_id, slug, name, kind, status, trial_ends_at, trial_expired, state, version, created_at, updated_at)";

pub async fn insert(tx: &mut PgConnection, tenants: &[&Tenant]) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO tenants (tenant_id, slug, name, kind, status, trial_ends_at, trial_expired,
                              state, version, created_at, updated_at)
         SELECT u.* FROM {ROWS}"
    );
    write(tx, tenants, sql).await
}

pub async fn update(tx: &mut PgConnection, tenants: &[&Tenant]) -> Result<(), ProjectionError> {
    let sql = format!(
        "UPDATE tenants t SET slug = u.slug, name = u.name, kind = u.kind, status = u.status,
                trial_ends_at = u.trial_ends_at, trial_expired = u.trial_expired, state = u.state,
                version = u.version, updated_at = u.updated_at
         FROM {ROWS} WHERE t.tenant_id = u.tenant_id"
    );
    write(tx, tenants, sql).await
}

async fn write(
    tx: &mut PgConnection,
    tenants: &[&Tenant],
    sql: String,
) -> Result<(), ProjectionError> {
    if tenants.is_empty() {
        return Ok(());
    }
    let c = Columns::of(tenants)?;
    // Built from constants only; the data travels as bound arrays.
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(c.id)
        .bind(c.slug)
        .bind(c.name)
        .bind(c.kind)
        .bind(c.status)
        .bind(c.trial_ends_at)
        .bind(c.trial_expired)
        .bind(c.state)
        .bind(c.version)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(tx)
        .await?;
    Ok(())
}

/// The rows as column arrays, for `UNNEST`.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    slug: Vec<String>,
    name: Vec<String>,
    kind: Vec<&'static str>,
    status: Vec<&'static str>,
    trial_ends_at: Vec<Option<DateTime<Utc>>>,
    trial_expired: Vec<bool>,
    state: Vec<sqlx::types::Json<Tenant>>,
    version: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
}

impl Columns {
    fn of(tenants: &[&Tenant]) -> Result<Self, ProjectionError> {
        let mut c = Columns::default();
        for t in tenants {
            let id = t.id.ok_or_else(|| {
                ProjectionError::Other("event for a tenant that was never created".into())
            })?;
            c.id.push(id);
            c.slug.push(t.slug.clone());
            c.name.push(t.name.clone());
            c.kind.push(t.kind.as_str());
            c.status.push(t.status.as_str());
            c.trial_ends_at.push(t.trial_ends_at);
            c.trial_expired.push(t.trial_expired);
            c.state.push(sqlx::types::Json((*t).clone()));
            c.version.push(t.version as i64);
            c.created_at.push(t.created_at);
            c.updated_at.push(t.updated_at);
        }
        Ok(c)
    }
}
