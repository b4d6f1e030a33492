//! What the API and the jobs read from billing's tables. Tenant data is read in the
//! caller's RLS scope (the pool's transactions set it); the catalog is platform-wide.

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::domain::period::Window;
use crate::domain::{Plan, Subscription};
use tenantry_contracts::billing::API_CALLS;

/// The plan `name` as the catalog defines it now.
pub async fn plan(conn: &mut PgConnection, name: &str) -> Result<Option<Plan>, sqlx::Error> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT definition FROM plans WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.and_then(|(bytes,)| decode_plan(&bytes)))
}

pub async fn plans(pool: &PgPool, include_retired: bool) -> Result<Vec<Plan>, sqlx::Error> {
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT definition FROM plans WHERE $1 OR NOT retired ORDER BY name")
            .bind(include_retired)
            .fetch_all(pool)
            .await?;
    Ok(rows.iter().filter_map(|(b,)| decode_plan(b)).collect())
}

fn decode_plan(bytes: &[u8]) -> Option<Plan> {
    pb::PlanDefined::decode(bytes)
        .ok()
        .and_then(|d| Plan::from_definition(d).ok())
}

pub async fn subscription(
    pool: &PgPool,
    tenant_id: Uuid,
) -> Result<Option<Subscription>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let row: Option<(sqlx::types::Json<Subscription>,)> =
        sqlx::query_as("SELECT state FROM subscriptions WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(row.map(|(s,)| s.0))
}

/// The tenant's usage per meter in each meter's current window at `now`: the calendar
/// month, or the day for API calls.
pub async fn current_usage(
    pool: &PgPool,
    tenant_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<(String, u64)>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT meter, quantity FROM usage_periods
         WHERE tenant_id = $1
           AND ((meter = $4 AND period_start = $3) OR (meter <> $4 AND period_start = $2))
         ORDER BY meter",
    )
    .bind(tenant_id)
    .bind(Window::Month.start(now))
    .bind(Window::Day.start(now))
    .bind(API_CALLS)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(m, q)| (m, u64::try_from(q).unwrap_or(0)))
        .collect())
}

/// Hourly usage of the tenant in [from, to), by hour then meter.
pub async fn hourly_usage(
    pool: &PgPool,
    tenant_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, String, u64)>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let rows: Vec<(DateTime<Utc>, String, i64)> = sqlx::query_as(
        "SELECT hour, meter, quantity FROM usage_hourly
         WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour, meter",
    )
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(h, m, q)| (h, m, u64::try_from(q).unwrap_or(0)))
        .collect())
}

#[derive(sqlx::FromRow)]
pub struct AlertRow {
    pub meter: String,
    pub period_start: DateTime<Utc>,
    pub percent: i32,
    pub used: i64,
    pub quota: i64,
    pub at: DateTime<Utc>,
}

pub async fn alerts(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<AlertRow>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let rows = sqlx::query_as::<_, AlertRow>(
        "SELECT meter, period_start, percent, used, quota, at FROM alerts
         WHERE tenant_id = $1 ORDER BY at DESC, percent DESC LIMIT 500",
    )
    .bind(tenant_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// The tenant's invoices, newest first.
pub async fn invoices(pool: &PgPool, tenant_id: Uuid) -> Result<Vec<pb::Invoice>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
        "SELECT invoice FROM invoices WHERE tenant_id = $1 ORDER BY number DESC LIMIT 500",
    )
    .bind(tenant_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .iter()
        .filter_map(|(b,)| pb::Invoice::decode(b.as_slice()).ok())
        .collect())
}

pub async fn invoice(
    pool: &PgPool,
    tenant_id: Uuid,
    number: u64,
) -> Result<Option<pb::Invoice>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT invoice FROM invoices WHERE tenant_id = $1 AND number = $2")
            .bind(tenant_id)
            .bind(i64::try_from(number).unwrap_or(i64::MAX))
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(row.and_then(|(b,)| pb::Invoice::decode(b.as_slice()).ok()))
}

/// The tenant's usage per monthly meter over the months in [from, to) (API calls, the same
/// requests counted per day, are left out: they are not billed).
pub async fn usage_between(
    pool: &PgPool,
    tenant_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, u64)>, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant_id)).await?;
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT meter, sum(quantity)::bigint FROM usage_periods
         WHERE tenant_id = $1 AND period_start >= $2 AND period_start < $3 AND meter <> $4
         GROUP BY meter",
    )
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .bind(API_CALLS)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|(m, q)| (m, u64::try_from(q).unwrap_or(0)))
        .collect())
}
