//! Synced records in sync's Postgres: upserted by (integration, stream, external id), with the
//! usage they add written to the outbox and the tenant's stored bytes kept in the same
//! statement.
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
/// usage they add and the tenant's stored bytes: what was written, and the tenant's stored
/// bytes after it (`None` when nothing was written). A record listed twice keeps its last
/// version.
pub async fn upsert(
    pool: &PgPool,
    tenant: Uuid,
    integration: Uuid,
    stream: &str,
    records: Vec<Record>,
    at: DateTime<Utc>,
) -> Result<(Written, Option<u64>), sqlx::Error> {
    if records.is_empty() {
        return Ok((Written::default(), None));
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
    // Two runs of one integration (a webhook's and a schedule's, or on two replicas) write
    // the stream one after the other, so the statement below sees what the other wrote.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("sync.records:{tenant}:{integration}:{stream}"))
        .execute(&mut *tx)
        .await?;
    // One statement: every CTE reads the snapshot from before it, so `replaced` holds the old
    // sizes of the rows the upsert changes (those whose data differs), and the tenant's total
    // grows by what was written less those. No CTE is joined to another (they have no
    // statistics: a join of two was planned as a nested loop, quadratic in a page's records).
    let (records, bytes, stored): (i64, i64, Option<i64>) = sqlx::query_as(
        "WITH k AS (
             SELECT * FROM UNNEST($4::text[], $5::text[], $6::int[]) AS k(external_id, data, bytes)
         ),
         replaced AS (
             SELECT COALESCE(SUM(r.bytes), 0)::bigint AS bytes
             FROM k JOIN records r
               ON r.tenant_id = $1 AND r.integration_id = $2 AND r.stream = $3
              AND r.external_id = k.external_id
             WHERE r.data IS DISTINCT FROM k.data::jsonb
         ),
         up AS (
             INSERT INTO records (tenant_id, integration_id, stream, external_id, data, bytes, synced_at)
             SELECT $1, $2, $3, k.external_id, k.data::jsonb, k.bytes, $7 FROM k
             ON CONFLICT (tenant_id, integration_id, stream, external_id) DO UPDATE
                 SET data = EXCLUDED.data, bytes = EXCLUDED.bytes, synced_at = EXCLUDED.synced_at
                 WHERE records.data IS DISTINCT FROM EXCLUDED.data
             RETURNING bytes
         ),
         sums AS (
             SELECT count(*) AS records, COALESCE(SUM(up.bytes), 0)::bigint AS bytes FROM up
         ),
         total AS (
             INSERT INTO tenant_storage (tenant_id, bytes)
             SELECT $1, sums.bytes - replaced.bytes FROM sums, replaced WHERE sums.records > 0
             ON CONFLICT (tenant_id) DO UPDATE SET bytes = tenant_storage.bytes + EXCLUDED.bytes
             RETURNING bytes
         ),
         usage AS (
             INSERT INTO usage_outbox (tenant_id, meter, quantity, window_start)
             SELECT $1, m.meter, m.quantity, $7
             FROM sums, LATERAL (VALUES ($8, sums.records), ($9, sums.bytes)) AS m(meter, quantity)
             WHERE sums.records > 0
         )
         SELECT records, bytes, (SELECT bytes FROM total) FROM sums",
    )
    .bind(tenant)
    .bind(integration)
    .bind(stream)
    .bind(&ids)
    .bind(&data)
    .bind(&sizes)
    .bind(at)
    .bind(RECORDS)
    .bind(STORAGE)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let written = Written {
        records: u64::try_from(records).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    };
    Ok((written, stored.map(|b| u64::try_from(b).unwrap_or(0))))
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

/// Bytes of all the tenant's records (what its plan's storage is measured against), as the
/// upserts have kept them.
pub async fn stored_bytes(pool: &PgPool, tenant: Uuid) -> Result<u64, sqlx::Error> {
    let mut tx = scoped_tx(pool, Scope::Tenant(tenant)).await?;
    let bytes: Option<i64> =
        sqlx::query_scalar("SELECT bytes FROM tenant_storage WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(bytes.map_or(0, |b| u64::try_from(b).unwrap_or(0)))
}
