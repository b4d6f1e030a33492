//! Webhook → records queryable: `--deliveries` deliveries at `--rate` a second, each to an
//! integration of its own (deliveries to one integration within 2 s coalesce into one run),
//! each after a new record was added to that integration's feed: `POST
//! /webhooks/sync/{id}` with the secret, then the time until the new record is in sync's
//! `records` table (one poller looks for every pending record every 10 ms).
//!
//! Beside it in the same run: the same integrations, one more record each, at the same rate,
//! the run started by the bench calling sync's runner directly (no webhook, no queue, no
//! worker), timed the same way: the floor of a run bringing the record in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tenantry_sync::runs::{Job, Mode};
use tenantry_testkit::TestEnv;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::world::{self, Created, Source, percentile, sorted};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Deliveries, each to its own integration.
    #[arg(long, default_value_t = 300)]
    deliveries: usize,
    /// Deliveries a second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Tenants owning the integrations (round robin).
    #[arg(long, default_value_t = 50)]
    tenants: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let env = TestEnv::new().await;
    let outcome = measure(&env, &args).await;
    world::cleanup(&env).await;
    outcome
}

async fn measure(env: &TestEnv, args: &Args) -> anyhow::Result<()> {
    let sync = world::start_sync(env, |_| {}).await;
    let admin = env.admin_pool().await;
    let (source, _heard) = Source::new(0, 1, args.deliveries);
    let addr = source.serve().await?;
    println!(
        "webhook → records queryable: {} deliveries at {}/s, {} tenants (world {}, load {})",
        args.deliveries,
        args.rate,
        args.tenants,
        env.id,
        world::load_average()
    );
    let tenants: Vec<Uuid> = (0..args.tenants.max(1)).map(|_| Uuid::now_v7()).collect();
    let created: Vec<Created> =
        futures::stream::iter(0..args.deliveries)
            .map(|n| {
                let url = format!("http://{addr}/feed/{n}/items");
                let tenant = tenants[n % tenants.len()];
                let sync = &sync;
                async move {
                    world::create_integration(env, sync, tenant, &url, world::manual(), 0).await
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
        args.deliveries as i64,
        Duration::from_secs(300),
    )
    .await?;

    let http = reqwest::Client::new();
    let base = format!("http://{}", sync.svc.addr);
    let gap = Duration::from_secs_f64(1.0 / args.rate.max(0.01));
    let schema = world::schema(env);

    // Through the webhook.
    let (webhook, accepted) = timed(&admin, &schema, &created, gap, |n, c| {
        let id = source.add(n);
        let request = http
            .post(format!("{base}/webhooks/sync/{}", c.id))
            .header("x-tenantry-webhook-secret", c.secret.clone())
            .body(r#"{"OrderId":"bench","State":"ready-for-handling"}"#);
        (id, async move {
            let sent = Instant::now();
            let answer = request.send().await?;
            anyhow::ensure!(
                answer.status() == 202,
                "webhook answered {}",
                answer.status()
            );
            Ok(sent.elapsed())
        })
    })
    .await?;
    // Directly through the runner.
    let runner = sync.svc.runner.clone();
    let (direct, _) = timed(&admin, &schema, &created, gap, |n, c| {
        let id = source.add(n);
        let runner = runner.clone();
        let job = Job {
            tenant_id: c.tenant,
            integration_id: c.id,
            run_id: Uuid::now_v7(),
            mode: Mode::Incremental,
            priority: 8,
        };
        (id, async move {
            // Not awaited here: the poller times the record's arrival as for a webhook.
            tokio::spawn(async move { runner.run(&job).await });
            Ok(Duration::ZERO)
        })
    })
    .await?;
    println!(
        "  {:<38} {:>6} {:>8} {:>8} {:>8}",
        "", "n", "p50 s", "p99 s", "max s"
    );
    row("webhook → records queryable", webhook);
    row("  of which the POST's 202", accepted);
    row("baseline: runner called → queryable", direct);
    println!(
        "  goal: p99 under 2 s through the webhook; load now {}",
        world::load_average()
    );
    drop(sync);
    Ok(())
}

fn row(name: &str, values: Vec<f64>) {
    let n = values.len();
    let v = sorted(values);
    println!(
        "  {name:<38} {n:>6} {:>8.3} {:>8.3} {:>8.3}",
        percentile(&v, 50.0),
        percentile(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

/// For each integration in turn, `gap` apart: `start` (which adds the integration's next
/// record to its feed, answers its id, and a future that sets the run going and answers how
/// long that took), then
/// the time until that record is queryable. Answers those times and the starts' times.
async fn timed<F, Fut>(
    admin: &sqlx::PgPool,
    schema: &str,
    created: &[Created],
    gap: Duration,
    mut start: F,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)>
where
    F: FnMut(usize, &Created) -> (u32, Fut),
    Fut: Future<Output = anyhow::Result<Duration>> + Send + 'static,
{
    // The record each integration waits for: its feed's item count (the newest id).
    let (pending_tx, mut pending_rx) = mpsc::unbounded_channel::<(Uuid, String, Instant)>();
    let sql = format!(
        "SELECT integration_id, external_id FROM {schema}.records
         WHERE integration_id = ANY($1) AND external_id = ANY($2)"
    );
    let admin = admin.clone();
    let total = created.len();
    let poller = tokio::spawn(async move {
        let mut waiting: HashMap<(Uuid, String), Instant> = HashMap::new();
        let mut done = Vec::with_capacity(total);
        while done.len() < total {
            while let Ok((id, external, sent)) = pending_rx.try_recv() {
                waiting.insert((id, external), sent);
            }
            if !waiting.is_empty() {
                let ids: Vec<Uuid> = waiting.keys().map(|k| k.0).collect();
                let externals: Vec<String> = waiting.keys().map(|k| k.1.clone()).collect();
                let found: Vec<(Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(&ids)
                    .bind(&externals)
                    .fetch_all(&admin)
                    .await?;
                for key in found {
                    if let Some(sent) = waiting.remove(&key) {
                        done.push(sent.elapsed().as_secs_f64());
                    }
                }
                anyhow::ensure!(
                    waiting
                        .values()
                        .all(|sent| sent.elapsed() < Duration::from_secs(60)),
                    "a record not queryable after 60 s"
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(done)
    });
    let starts = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(total)));
    let mut ticker = tokio::time::interval(gap);
    let mut in_flight = tokio::task::JoinSet::new();
    for (n, c) in created.iter().enumerate() {
        ticker.tick().await;
        let sent = Instant::now();
        // The id of the record `start` added: the run must bring it.
        let (id, started) = start(n, c);
        pending_tx.send((c.id, id.to_string(), sent))?;
        let starts = starts.clone();
        in_flight.spawn(async move {
            let took = started.await?;
            starts.lock().await.push(took.as_secs_f64());
            anyhow::Ok(())
        });
    }
    while let Some(outcome) = in_flight.join_next().await {
        outcome??;
    }
    let done = poller.await??;
    let starts = std::mem::take(&mut *starts.lock().await);
    Ok((done, starts))
}
