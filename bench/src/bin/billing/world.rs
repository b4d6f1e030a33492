//! What the three billing figures share: tenants created in bulk as the tenant service would,
//! billing started in the bench's world with a clock of its own, and counts read straight
//! from billing's tables.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tenantry_billing::{BillingConfig, BillingService, Handle};
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::aggregate::batch_of;
use tenantry_eventstore::{AggregateAddress, AppendRequest, CommandMeta, EventStore};
use tenantry_kit::service::Running;
use tenantry_kit::{Clock, ManualClock};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

/// Appends pipelined at most this many at a time (the eventstore bench's chunk).
const CHUNK: usize = 20_000;

/// Appends `tenant.created` (business) for every id, pipelined, as the tenant service would.
/// `trial_ends_at`: the trial each tenant was given (billing's 30 days when `None`).
pub async fn create_tenants(
    store: &EventStore,
    ids: &[Uuid],
    trial_ends_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    for chunk in ids.chunks(CHUNK) {
        let requests = chunk
            .iter()
            .map(|id| {
                let address =
                    AggregateAddress::for_events::<TenantEvent>(id.to_string(), id.to_string())?;
                let meta = CommandMeta {
                    command_id: format!("bench-create-{id}"),
                    actor: "bench".into(),
                    correlation_id: String::new(),
                    occurred_at: Utc::now(),
                    traceparent: None,
                    fingerprint: None,
                };
                let created = TenantEvent::Created(pb::TenantCreated {
                    tenant_id: id.to_string(),
                    name: format!("Tenant {}", id.simple()),
                    slug: format!("b{}", id.simple()),
                    r#type: pb::TenantType::Business as i32,
                    settings: None,
                    trial_ends_at: trial_ends_at.map(tenantry_eventstore::time::to_proto),
                });
                Ok(AppendRequest {
                    batch: batch_of(&address, &[created], &meta),
                    address,
                    expected: Some(0),
                    message_id: meta.command_id,
                    traceparent: None,
                    fingerprint: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for outcome in store.append_many(requests).await {
            outcome.context("append tenant.created")?;
        }
    }
    Ok(())
}

/// Billing in `env` on `clock`, started with `adjust`ed ephemeral settings.
pub async fn start_billing(
    env: &TestEnv,
    clock: &ManualClock,
    adjust: impl FnOnce(&mut BillingConfig),
) -> Running<Handle> {
    let mut config = BillingConfig::ephemeral();
    adjust(&mut config);
    env.start(BillingService {
        config,
        clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
    })
    .await
}

/// Deletes the bench's world now, unless `TENANTRY_TEST_KEEP` asks to keep it for a look
/// (its `Drop` then says so and leaves it).
pub async fn cleanup(env: &TestEnv) {
    if std::env::var_os("TENANTRY_TEST_KEEP").is_none() {
        env.cleanup().await;
    }
}

/// Stops a service and waits until its jobs (projections) have ended.
pub async fn stop<H>(running: Running<H>) {
    running.stop();
    let _ = running.task.await;
}

/// Billing's schema in `env`, quoted for SQL.
pub fn schema(env: &TestEnv) -> String {
    format!("\"{}\"", env.schema("billing"))
}

/// `SELECT count(*)` of billing's `table` where `filter` holds (the admin pool sees every
/// tenant's rows).
pub async fn count(
    pool: &sqlx::PgPool,
    env: &TestEnv,
    table: &str,
    filter: &str,
) -> anyhow::Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM {}.{table} WHERE {filter}",
        schema(env)
    );
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?;
    Ok(n)
}

/// Waits until `count(table, filter)` reaches `want`, printing progress every few seconds;
/// returns the time it took.
pub async fn wait_count(
    pool: &sqlx::PgPool,
    env: &TestEnv,
    what: &str,
    table: &str,
    filter: &str,
    want: i64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut said = Instant::now();
    loop {
        let n = count(pool, env, table, filter).await?;
        if n >= want {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "{what}: {n} of {want} after {timeout:?}"
        );
        if said.elapsed() > Duration::from_secs(10) {
            println!(
                "    … {what}: {n} of {want} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 20 ms until it returns `Some`; an error naming `what` after `timeout`
/// (not a panic, so the bench's world is still deleted on the way out).
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not reached within {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A deterministic generator (SplitMix64), so a run's traffic can be repeated.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}
