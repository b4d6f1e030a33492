//! Usage roll-up throughput: `--reports` gateway usage reports for `--tenants` tenants on a
//! fresh `USAGE` stream, read (a) by a raw JetStream pull consumer that only fetches and
//! acknowledges, and (b) by billing's roll-up into Postgres; then the totals checked to the
//! unit.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt as _;
use prost::Message as _;
use tenantry_contracts::usage;
use tenantry_eventstore::StreamKind;
use tenantry_kit::ManualClock;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

use crate::world::{self, Rng};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Usage reports published (and rolled up).
    #[arg(long, default_value_t = 1_000_000)]
    reports: usize,
    /// Tenants the reports are for.
    #[arg(long, default_value_t = 10_000)]
    tenants: usize,
    /// Gateway replicas reporting: each reports every tenant once a window, with its own
    /// sequence (one counter per replica, as the gateway keeps it).
    #[arg(long, default_value_t = 2)]
    instances: usize,
    /// Skip opening the tenants' subscriptions first (no quotas to compare totals against).
    #[arg(long)]
    no_subscriptions: bool,
}

/// What was published: the totals the roll-up must arrive at.
struct Published {
    requests: i64,
    bytes: i64,
    last: u64,
    rate: f64,
}

/// Every `HEAVY`th tenant sends enough to cross its plan's quota (business: 300,000 requests
/// a month) during the run, so the roll-up also records crossings and the dispatcher appends
/// them, as in production.
const HEAVY: usize = 100;
/// Publishes in flight before their acknowledgements are awaited: below the JetStream
/// context's 5,000 acknowledgements in flight, past which a publish waits for a permit that
/// only an awaited (or dropped) acknowledgement gives back.
const IN_FLIGHT: usize = 4_000;
/// The roll-up's own batch (the runner's default), for the baseline to fetch alike.
const BATCH: usize = 4_000;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let env = TestEnv::new().await;
    let outcome = measure(&env, &args).await;
    world::cleanup(&env).await;
    outcome
}

async fn measure(env: &TestEnv, args: &Args) -> anyhow::Result<()> {
    let store = env.event_store().await;
    let admin = env.admin_pool().await;
    let clock = ManualClock::new(chrono::Utc::now());
    let ids: Vec<Uuid> = (0..args.tenants).map(|_| Uuid::now_v7()).collect();
    println!(
        "usage roll-up: {} reports for {} tenants from {} gateway replicas (world {})",
        args.reports, args.tenants, args.instances, env.id
    );

    if !args.no_subscriptions {
        // Billing opens the tenants' subscriptions (their quotas), then stops: the roll-up is
        // measured from a fresh start with the whole stream waiting.
        let started = Instant::now();
        let billing = world::start_billing(env, &clock, |_| {}).await;
        world::create_tenants(&store, &ids, None).await?;
        world::wait_count(
            &admin,
            env,
            "quotas",
            "quotas",
            "meter = 'requests'",
            args.tenants as i64,
            Duration::from_secs(600),
        )
        .await?;
        world::stop(billing).await;
        println!(
            "  {} subscriptions opened in {:.1} s (setup)",
            args.tenants,
            started.elapsed().as_secs_f64()
        );
    }

    let published = publish(&store, &ids, args).await?;
    println!(
        "  published in {:.0} reports/s (setup; stream sequence {})",
        published.rate, published.last
    );

    // (a) Baseline: a raw pull consumer with the roll-up's settings, fetch and ack only.
    let stream = store
        .jetstream()
        .get_stream(&store.names().usage_stream)
        .await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench_raw".into()),
            filter_subject: format!("{}.>", store.root_of(StreamKind::Usage)),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(BATCH)
        .messages()
        .await?;
    let mut read = 0usize;
    while read < args.reports {
        let message = messages
            .next()
            .await
            .context("the raw consumer ended")?
            .map_err(|e| anyhow::anyhow!("raw consumer: {e}"))?;
        read += 1;
        if read.is_multiple_of(BATCH) || read == args.reports {
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        }
    }
    let raw_secs = started.elapsed().as_secs_f64();
    drop(messages);
    stream.delete_consumer("bench_raw").await?;
    let raw = args.reports as f64 / raw_secs;
    println!(
        "  (a) raw JetStream pull consumer, fetch + ack   {raw:>9.0} reports/s ({raw_secs:.1} s)"
    );

    // (b) Billing from its start until the roll-up's checkpoint is the last report.
    let started = Instant::now();
    let billing = world::start_billing(env, &clock, |_| {}).await;
    let start_secs = started.elapsed().as_secs_f64();
    billing
        .usage_positions
        .wait_for(published.last, Duration::from_secs(1_800))
        .await?;
    let total_secs = started.elapsed().as_secs_f64();
    let ours = args.reports as f64 / total_secs;
    let ours_running = args.reports as f64 / (total_secs - start_secs);
    println!(
        "  (b) billing roll-up into Postgres             {ours:>9.0} reports/s ({total_secs:.1} s from start; {ours_running:.0}/s after its {:.2} s start)   {:.2}x raw",
        start_secs,
        ours / raw
    );

    // Exactly once: the month's totals are what was published, to the unit.
    let schema = world::schema(env);
    let totals: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT meter, sum(quantity)::bigint FROM {schema}.usage_periods GROUP BY meter"
    )))
    .fetch_all(&admin)
    .await?;
    let hourly: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT meter, sum(quantity)::bigint FROM {schema}.usage_hourly GROUP BY meter"
    )))
    .fetch_all(&admin)
    .await?;
    let of = |rows: &[(String, i64)], meter: &str| {
        rows.iter().find(|(m, _)| m == meter).map_or(0, |(_, q)| *q)
    };
    let exact = [&totals, &hourly].iter().all(|rows| {
        of(rows, "requests") == published.requests && of(rows, "bytes") == published.bytes
    });
    let crossed = world::count(&admin, env, "quota_outbox", "true").await?;
    println!(
        "  totals: requests {} of {} published, bytes {} of {} (hourly: {}, {}) — {}; {crossed} thresholds crossed",
        of(&totals, "requests"),
        published.requests,
        of(&totals, "bytes"),
        published.bytes,
        of(&hourly, "requests"),
        of(&hourly, "bytes"),
        if exact { "exact" } else { "MISMATCH" }
    );
    world::stop(billing).await;
    anyhow::ensure!(exact, "the roll-up's totals differ from what was published");
    Ok(())
}

/// Publishes the reports as gateways do: every window, each replica reports each tenant
/// once, with the next number of its own sequence and `usage::message_id` as `Nats-Msg-Id`.
async fn publish(
    store: &tenantry_eventstore::EventStore,
    ids: &[Uuid],
    args: &Args,
) -> anyhow::Result<Published> {
    let root = store.names().usage_root.clone();
    let js = store.jetstream();
    let per_window = ids.len() * args.instances;
    let windows = args.reports.div_ceil(per_window.max(1));
    // Whole seconds in the past, one a window, as the replicas' rounds were.
    let first = chrono::Utc::now().timestamp() - windows as i64 - 5;
    let instances: Vec<String> = (0..args.instances)
        .map(|i| format!("gw-bench-{i}"))
        .collect();
    let mut sequences = vec![0u64; args.instances];
    let mut rng = Rng::new(19);
    let (mut requests_total, mut bytes_total) = (0i64, 0i64);
    let mut acks = Vec::with_capacity(IN_FLIGHT);
    let started = Instant::now();
    let mut sent = 0usize;
    'windows: for w in 0..windows {
        for (t, tenant) in ids.iter().enumerate() {
            let tenant = tenant.to_string();
            let subject = usage::subject(&root, &tenant, usage::HTTP)?;
            for (i, instance) in instances.iter().enumerate() {
                if sent == args.reports {
                    break 'windows;
                }
                sequences[i] += 1;
                // The others stay under 80% of the business plan's 10,000 API calls a day
                // (about 100 reports of 50 requests each).
                let requests = if t % HEAVY == 0 {
                    rng.between(2_000, 6_000)
                } else {
                    rng.between(1, 100)
                };
                let (bytes_in, bytes_out) = (requests * rng.between(0, 500), requests * 1_200);
                requests_total += requests as i64;
                bytes_total += (bytes_in + bytes_out) as i64;
                let report = pb::UsageReport {
                    tenant_id: tenant.clone(),
                    instance_id: instance.clone(),
                    window_start: first + w as i64,
                    window_seconds: 1,
                    requests,
                    bytes_in,
                    bytes_out,
                    sequence: sequences[i],
                    quantity: 0,
                };
                let mut headers = HeaderMap::new();
                headers.insert(
                    "Nats-Msg-Id",
                    usage::message_id(instance, &tenant, sequences[i]).as_str(),
                );
                acks.push(
                    js.publish_with_headers(
                        subject.clone(),
                        headers,
                        report.encode_to_vec().into(),
                    )
                    .await?,
                );
                sent += 1;
                if acks.len() == IN_FLIGHT {
                    for ack in acks.drain(..) {
                        ack.await?;
                    }
                }
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    Ok(Published {
        requests: requests_total,
        bytes: bytes_total,
        last: store.last_position_of(StreamKind::Usage).await?,
        rate: sent as f64 / started.elapsed().as_secs_f64(),
    })
}
