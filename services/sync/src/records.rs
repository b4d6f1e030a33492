//! Synced records in sync's Postgres: upserted by (integration, stream, external id), and the
//! usage they add written to the outbox in the same transaction.
//!
//! A record whose data did not change is not written again (the upsert's `WHERE ... IS
//! DISTINCT FROM`), so a re-run of the same data writes, and meters, nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tenantry_contracts::sync::{RECORDS, STORAGE};
use tenantry_kit::db::{Scope, scoped_tx};
use uuid::Uuid;

/// One record as fetched: its id at the source and its JSON.
#[derive(Debug, Clone)]
pub struct Record {
    pub external_id: String,
    /// The record's JSON, serialized once (stored as `jsonb`, metered by its length).
    pub json: String,
}

/// What a batch wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub records: u64,
    pub bytes: u64,
}

impl std::ops::AddAssign for Written {
    fn add_assign(&mut self, other: Self) {
        self.records += other.records;
        self.bytes += other.bytes;
    }
}

/// Upserts `records` of `tenant`'s `integration` into `stream` in one transaction, with the
/// usage they add. A record listed twice keeps its last version.
pub async fn upsert(
    pool: &PgPool,
    tenant: Uuid,
    integration: Uuid,
    stream: &str,
    records: Vec<Record>,
    at: DateTime<Utc>,
) -> Result<Written, sqlx::Error> {
    if records.is_empty() {
        return Ok(Written::default());
    }
    // ON CONFLICT cannot touch one row twice in a statement.
    let mut last: HashMap<String, String> = HashMap::with_capacity(records.len());
    for r in records {
        last.insert(r.external_id, r.json);
    }
    let mut ids = Vec::with_capacity(last.len());
    let mut data = Vec::with_capacity(last.len());
    let mut sizes = Vec::with_capacity(last.len());
    for (id, json) in last {
        sizes.push(i32::try_from(json.len()).unwrap_or(i32::MAX));
        ids.push(id);
        data.push(json);
    }
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let written: Vec<i32> = sqlx::query_scalar(
        "INSERT INTO records (tenant_id, integration_id, stream, external_id, data, bytes, synced_at)
         SELECT $1, $2, $3, k.external_id, k.data::jsonb, k.bytes, $7
         FROM UNNEST($4::text[], $5::text[], $6::int[]) AS k(external_id, data, bytes)
         ON CONFLICT (tenant_id, integration_id, stream, external_id) DO UPDATE
             SET data = EXCLUDED.data, bytes = EXCLUDED.bytes, synced_at = EXCLUDED.synced_at
             WHERE records.data IS DISTINCT FROM EXCLUDED.data
         RETURNING bytes",
    )
    .bind(tenant)
    .bind(integration)
    .bind(stream)
    .bind(&ids)
    .bind(&data)
    .bind(&sizes)
    .bind(at)
    .fetch_all(&mut *tx)
    .await?;
    let total = Written {
        records: written.len() as u64,
        bytes: written.iter().map(|b| u64::try_from(*b).unwrap_or(0)).sum(),
    };
    if total.records > 0 {
        sqlx::query(
            "INSERT INTO usage_outbox (tenant_id, meter, quantity, window_start)
             VALUES ($1, $2, $3, $5), ($1, $4, $6, $5)",
        )
        .bind(tenant)
        .bind(RECORDS)
        .bind(i64::try_from(total.records).unwrap_or(i64::MAX))
        .bind(STORAGE)
        .bind(at)
        .bind(i64::try_from(total.bytes).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(total)
}

/// How many records `tenant`'s `integration` holds in `stream` (tests, status).
pub async fn count(
    pool: &PgPool,
    tenant: Uuid,
    integration: Uuid,
    stream: &str,
) -> Result<i64, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM records WHERE tenant_id = $1 AND integration_id = $2 AND stream = $3",
    )
    .bind(tenant)
    .bind(integration)
    .bind(stream)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Bytes of all the tenant's records (what its plan's storage is measured against).
pub async fn stored_bytes(pool: &PgPool, tenant: Uuid) -> Result<u64, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(bytes), 0)::bigint FROM records WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}
