//! Period close for `--tenants` subscriptions: tenants created in bulk, their subscriptions
//! opened by billing, the clock moved past the month's end, and `Periods::close_due` timed
//! until every subscription is renewed and its invoice is in the `invoices` read model.
//! Baseline: one `INSERT … SELECT` of as many invoice rows, the floor of writing them at all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use prost::Message as _;
use tenantry_billing::domain::period::{add_months, month_start};
use tenantry_billing::periods::Periods;
use tenantry_eventstore::Repository;
use tenantry_kit::{Clock, ManualClock};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

use crate::{phases, world};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Subscriptions whose period is closed.
    #[arg(long, default_value_t = 100_000)]
    tenants: usize,
    /// Instead of `close_due`, a copy of its steps with a timer around each, this many
    /// subscriptions at a time (a profile: where the time goes).
    #[arg(long)]
    phases: Option<usize>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let env = TestEnv::new().await;
    let outcome = measure(&env, &args).await;
    world::cleanup(&env).await;
    outcome
}

async fn measure(env: &TestEnv, args: &Args) -> anyhow::Result<()> {
    let n = args.tenants as i64;
    let store = env.event_store().await;
    let admin = env.admin_pool().await;
    let clock = ManualClock::new(Utc::now());
    println!(
        "period close: {} subscriptions (world {})",
        args.tenants, env.id
    );
    // The service's own round runs at its start and then not for an hour: the close measured
    // is the bench's call alone.
    let billing = world::start_billing(env, &clock, |c| c.quota_interval_ms = 3_600_000).await;

    // Business tenants whose trial is over: every subscription is invoiced its full price.
    let ids: Vec<Uuid> = (0..args.tenants).map(|_| Uuid::now_v7()).collect();
    let started = Instant::now();
    world::create_tenants(&store, &ids, Some(Utc::now())).await?;
    let appended = started.elapsed();
    let opened = world::wait_count(
        &admin,
        env,
        "subscriptions open",
        "subscriptions",
        "true",
        n,
        Duration::from_secs(1_800),
    )
    .await?;
    println!(
        "  setup: {} tenant.created appended in {:.1} s, subscriptions open and projected {:.1} s later",
        args.tenants,
        appended.as_secs_f64(),
        opened.as_secs_f64()
    );

    // Baseline: the invoice rows written by one statement, the floor of any close.
    let floor = insert_select_floor(&admin, env).await?;
    println!(
        "  baseline: INSERT … SELECT of {n} invoice rows      {:>7.2} s ({:.0} rows/s)",
        floor.as_secs_f64(),
        n as f64 / floor.as_secs_f64()
    );

    // The month ends.
    let now = clock.now();
    let next = add_months(month_start(now), 1);
    clock.advance(next - now + chrono::Duration::minutes(1));
    let service = env.db("billing");
    let periods = Periods {
        pool: tenantry_kit::db::DbSettings {
            max_connections: tenantry_billing::BillingConfig::ephemeral().db_max_connections,
            ..service
        }
        .service_pool()
        .await?,
        // Cold, as the service's is for subscriptions it has not touched since its start.
        subscriptions: Repository::new(store.clone(), 100_000),
        clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
        grace: chrono::Duration::days(7),
        finalize_after: chrono::Duration::hours(1),
        tenants: None,
        every: Duration::from_secs(1),
    };
    let started = Instant::now();
    let mut closed = 0usize;
    let mut calls = Vec::new();
    if let Some(concurrency) = args.phases {
        let due: Vec<(Uuid,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id FROM {}.subscriptions WHERE period_end <= $1",
            world::schema(env)
        )))
        .bind(clock.now())
        .fetch_all(&admin)
        .await?;
        let n = phases::close_all(
            &periods,
            due.into_iter().map(|(t,)| t).collect(),
            concurrency,
        )
        .await?;
        calls.push((n, started.elapsed()));
        closed = n;
    }
    while closed < args.tenants {
        let call = Instant::now();
        let n = periods.close_due().await?;
        calls.push((n, call.elapsed()));
        closed += n;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1_800),
            "{closed} of {} closed after 30 minutes",
            args.tenants
        );
        if n == 0 {
            // As the service's job would, next round.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let close_secs = started.elapsed().as_secs_f64();
    let renewed_filter = format!("period_end > '{}'", clock.now().to_rfc3339());
    world::wait_count(
        &admin,
        env,
        "invoices projected",
        "invoices",
        "true",
        n,
        Duration::from_secs(600),
    )
    .await?;
    world::wait_count(
        &admin,
        env,
        "subscriptions renewed",
        "subscriptions",
        &renewed_filter,
        n,
        Duration::from_secs(600),
    )
    .await?;
    let total_secs = started.elapsed().as_secs_f64();
    let invoices = world::count(&admin, env, "invoices", "true").await?;
    println!(
        "  close_due until all {} closed (appended)        {close_secs:>7.2} s ({:.0}/s) in {} calls: {}",
        args.tenants,
        args.tenants as f64 / close_secs,
        calls.len(),
        calls
            .iter()
            .map(|(n, d)| format!("{n} in {:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  … until every one renewed and invoiced           {total_secs:>7.2} s ({:.0}/s), {:.1}x the floor; {invoices} invoices",
        args.tenants as f64 / total_secs,
        total_secs / floor.as_secs_f64()
    );
    world::stop(billing).await;
    anyhow::ensure!(invoices == n, "{invoices} invoices for {n} subscriptions");
    Ok(())
}

/// `INSERT … SELECT` of one draft invoice row per subscription (an invoice of the size the
/// close drafts) into a copy of the `invoices` table; returns the time it took.
async fn insert_select_floor(admin: &sqlx::PgPool, env: &TestEnv) -> anyhow::Result<Duration> {
    let schema = world::schema(env);
    let invoice = pb::Invoice {
        number: 1,
        status: pb::InvoiceStatus::Draft as i32,
        period_start: Some(tenantry_eventstore::time::to_proto(Utc::now())),
        period_end: Some(tenantry_eventstore::time::to_proto(Utc::now())),
        currency: "BRL".into(),
        lines: vec![pb::InvoiceLine {
            kind: "base".into(),
            description: "business, 2026-01-01 to 2026-02-01".into(),
            meter: String::new(),
            quantity: 1,
            amount_minor: 49_900,
        }],
        total_minor: 49_900,
        issued_at: Some(tenantry_eventstore::time::to_proto(Utc::now())),
        plan: "business".into(),
    }
    .encode_to_vec();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {schema}.invoices_floor (LIKE {schema}.invoices INCLUDING ALL)"
    )))
    .execute(admin)
    .await?;
    let started = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.invoices_floor (tenant_id, number, status, total, issued_at, invoice)
         SELECT tenant_id, 1, 'draft', 49900, now(), $1 FROM {schema}.subscriptions"
    )))
    .bind(&invoice)
    .execute(admin)
    .await?;
    let took = started.elapsed();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE {schema}.invoices_floor"
    )))
    .execute(admin)
    .await?;
    Ok(took)
}
