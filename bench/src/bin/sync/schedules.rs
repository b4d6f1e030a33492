//! `--integrations` integrations (of `--tenants` tenants) on one-minute schedules
//! (`* * * * *`), each reading its own feed of the stand-in source, on the real clock: sync's
//! scheduler queues the due ones on `JOBS`, its worker runs them. The start drift of a run is
//! when the source saw the run's first request (page 1) minus the minute it was due: an upper
//! bound of the run's start (the run opened its credentials before), in real time, for
//! `--minutes` whole minutes after the integrations were created and projected.
//!
//! Beside it in the same run (at half past the second measured minute): the same
//! integrations' runs started by the bench itself, all at once through as many slots as the
//! worker has (the runner called directly: no scheduler, no queue), their drift measured
//! the same way from the moment they were started: the floor of running that many at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use tenantry_proto::events::v1 as pb;
use tenantry_sync::runs::{Job, Mode};
use tenantry_testkit::TestEnv;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::source::{FEED_PAGE, Seen};
use crate::world::{self, Source, percentile, sorted};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[arg(long, default_value_t = 1_000)]
    integrations: usize,
    /// Tenants owning them (round robin).
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Whole minutes measured.
    #[arg(long, default_value_t = 3)]
    minutes: u64,
    /// The worker's runs at once (`sync-worker-concurrency`; the service's default).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The service's database connections (`sync-db-max-connections`; its default).
    #[arg(long, default_value_t = 16)]
    db_max_connections: u32,
    /// One tenant's runs at once (`sync-tenant-concurrency`).
    #[arg(long, default_value_t = 2)]
    tenant_concurrency: usize,
    /// How often the scheduler looks for due integrations (`sync-schedule-tick-ms`).
    #[arg(long, default_value_t = 1_000)]
    tick_ms: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let env = TestEnv::new().await;
    let outcome = measure(&env, &args).await;
    world::cleanup(&env).await;
    outcome
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

async fn measure(env: &TestEnv, args: &Args) -> anyhow::Result<()> {
    let sync = world::start_sync(env, |c| {
        c.worker_concurrency = args.concurrency;
        c.tenant_concurrency = args.tenant_concurrency;
        c.schedule_tick_ms = args.tick_ms;
        c.db_max_connections = args.db_max_connections;
    })
    .await;
    let admin = env.admin_pool().await;
    let (source, mut heard) = Source::new(0, 1, args.integrations);
    let addr = source.serve().await?;
    println!(
        "one-minute schedules: {} integrations of {} tenants, worker concurrency {} ({} per tenant), {} database connections, scheduler tick {} ms (world {}, load {})",
        args.integrations,
        args.tenants,
        args.concurrency,
        args.tenant_concurrency,
        args.db_max_connections,
        args.tick_ms,
        env.id,
        world::load_average()
    );
    let tenants: Vec<Uuid> = (0..args.tenants.max(1)).map(|_| Uuid::now_v7()).collect();
    let every_minute = pb::Schedule {
        frequency: pb::ScheduleFrequency::Cron as i32,
        cron: "* * * * *".into(),
    };
    let created_at = std::time::Instant::now();
    let created: Vec<world::Created> =
        futures::stream::iter(0..args.integrations)
            .map(|n| {
                source.add(n); // one record each, so a first run writes something
                let url = format!("http://{addr}/feed/{n}/items");
                let tenant = tenants[n % tenants.len()];
                let (env, sync, schedule) = (env, &sync, every_minute.clone());
                async move {
                    world::create_integration(env, sync, tenant, &url, schedule, FEED_PAGE).await
                }
            })
            .buffered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
    world::wait_projected(
        &admin,
        env,
        args.integrations as i64,
        Duration::from_secs(600),
    )
    .await?;
    println!(
        "  setup: created and projected in {:.1} s",
        created_at.elapsed().as_secs_f64()
    );
    // The first whole minute after the setup (its runs all due at once, like every next one).
    let now = secs(SystemTime::now());
    let first = (now / 60.0).floor() * 60.0 + 60.0;
    let end = first + 60.0 * args.minutes as f64;
    println!(
        "  measuring {} minutes from {:.0} s from now",
        args.minutes,
        first - now
    );
    // The baseline at half past the second minute (or the first when only one is measured):
    // runs with nothing new, like the steady state's. With a third minute, at half past it,
    // the same runs after one new record was added to every feed: the work of a first run
    // (a record written, its usage), for minute 1.
    let baseline_at = first + if args.minutes > 1 { 90.0 } else { 30.0 };
    wait_until(baseline_at).await;
    let baseline_started = secs(SystemTime::now());
    at_once(&sync, &created, args.concurrency).await?;
    let writing_started = if args.minutes > 2 {
        wait_until(first + 150.0).await;
        for n in 0..args.integrations {
            source.add(n);
        }
        let started = secs(SystemTime::now());
        at_once(&sync, &created, args.concurrency).await?;
        Some(started)
    } else {
        None
    };
    wait_until(end + 20.0).await;

    // Each feed's first page-1 request in each minute's first half is that minute's scheduled
    // run; in the baseline's half minute, the baseline's.
    let mut scheduled: HashMap<(i64, usize), f64> = HashMap::new();
    let mut baseline: HashMap<usize, f64> = HashMap::new();
    let mut writing: HashMap<usize, f64> = HashMap::new();
    let earliest = |map: &mut HashMap<usize, f64>, feed: usize, drift: f64| {
        map.entry(feed)
            .and_modify(|d| *d = d.min(drift))
            .or_insert(drift);
    };
    while let Ok(Seen { feed, page, at }) = heard.try_recv() {
        let at = secs(at);
        if page != 1 || at < first || at >= end + 20.0 {
            continue;
        }
        if at >= baseline_started && at < baseline_started + 29.0 {
            earliest(&mut baseline, feed, at - baseline_started);
            continue;
        }
        if let Some(started) = writing_started
            && at >= started
            && at < started + 29.0
        {
            earliest(&mut writing, feed, at - started);
            continue;
        }
        let minute = (at / 60.0).floor();
        let drift = at - minute * 60.0;
        scheduled
            .entry((minute as i64, feed))
            .and_modify(|d| *d = d.min(drift))
            .or_insert(drift);
    }
    println!(
        "  {:<22} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "", "runs", "p50 s", "p99 s", "max s", "missed"
    );
    let mut all = Vec::new();
    for m in 0..args.minutes {
        let minute = ((first / 60.0) as i64) + m as i64;
        let drifts: Vec<f64> = scheduled
            .iter()
            .filter(|((mm, _), _)| *mm == minute)
            .map(|(_, d)| *d)
            .collect();
        all.extend(drifts.iter().copied());
        row(
            &format!("scheduled, minute {}", m + 1),
            args.integrations,
            drifts,
        );
    }
    row(
        "scheduled, all minutes",
        args.integrations * args.minutes as usize,
        all,
    );
    row(
        "baseline: all at once",
        args.integrations,
        baseline.into_values().collect(),
    );
    if writing_started.is_some() {
        row(
            "  … each a new record",
            args.integrations,
            writing.into_values().collect(),
        );
    }
    println!(
        "  drift: the source's first request of a run minus its due minute (goal: p99 under 1 s); load now {}",
        world::load_average()
    );
    drop(sync);
    Ok(())
}

/// The same runs as the scheduled ones started at once by the bench through `slots` slots
/// (the runner called directly: no scheduler, no queue, no per-tenant limit).
async fn at_once(
    sync: &world::Sync,
    created: &[world::Created],
    slots: usize,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(slots.max(1)));
    let runner = sync.svc.runner.clone();
    let runs: Vec<_> = created
        .iter()
        .map(|c| {
            let (runner, slots) = (runner.clone(), slots.clone());
            let job = Job {
                tenant_id: c.tenant,
                integration_id: c.id,
                run_id: Uuid::now_v7(),
                mode: Mode::Incremental,
                priority: 3,
            };
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                runner.run(&job).await.map(|_| ())
            })
        })
        .collect();
    for run in runs {
        run.await?
            .map_err(|e| anyhow::anyhow!("a baseline run failed: {e}"))?;
    }
    Ok(())
}

fn row(name: &str, expected: usize, drifts: Vec<f64>) {
    let n = drifts.len();
    let d = sorted(drifts);
    println!(
        "  {name:<22} {n:>6} {:>8.3} {:>8.3} {:>8.3} {:>8}",
        percentile(&d, 50.0),
        percentile(&d, 99.0),
        d.last().copied().unwrap_or(f64::NAN),
        expected.saturating_sub(n)
    );
}

/// Sleeps until Unix time `at` (seconds).
async fn wait_until(at: f64) {
    let now = secs(SystemTime::now());
    if at > now {
        tokio::time::sleep(Duration::from_secs_f64(at - now)).await;
    }
}
