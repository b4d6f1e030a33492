//! Records into Postgres through sync's real records path: an `http_json` integration's full
//! run (sync's runner, as the worker calls it, without the queue) against the stand-in's
//! `/big/items`, pages of `--page-size`: each page fetched, its records taken at the
//! JSONPath, upserted by (integration, stream, external id) under forced RLS with the usage
//! outbox rows in the same transaction, and the run's outcome recorded on the integration.
//!
//! Beside it in the same run: (a) the same rows, page by page, in one plain multi-row
//! `INSERT` each into a plain table (no key, no RLS, no outbox): the floor of writing them at
//! all; (b) the pages fetched and parsed alone (the source and JSON floor).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tenantry_sync::runs::{Job, Mode};
use tenantry_testkit::TestEnv;
use uuid::Uuid;

use crate::world::{self, Source};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Records in the source's catalogue (each run writes them all).
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Records per page the source answers.
    #[arg(long, default_value_t = 5_000)]
    page_size: usize,
    /// Integrations (of as many tenants) run at once, each writing the whole catalogue.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Repetitions (baseline, then sync's path, each time).
    #[arg(long, default_value_t = 2)]
    runs: usize,
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
    let (source, _) = Source::new(args.records, args.page_size, 0);
    let addr = source.serve().await?;
    let url = format!("http://{addr}/big/items");
    let pages = args.records.div_ceil(args.page_size.max(1));
    println!(
        "records into Postgres: {} records ({:.1} MB of JSON) in {pages} pages of {}, {} integration(s) at once, {} runs (world {}, load {})",
        args.records,
        source.big_bytes() as f64 / 1e6,
        args.page_size,
        args.parallel,
        args.runs,
        env.id,
        world::load_average()
    );
    let schema = world::schema(env);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {schema}.bench_plain (integration_id uuid, stream text, external_id text, data jsonb, bytes int)"
    )))
    .execute(&admin)
    .await?;
    let total = (args.records * args.parallel) as f64;
    println!(
        "  {:<5} {:>26} {:>26} {:>26} {:>7}",
        "run", "fetch + parse only", "fetch + plain INSERT", "sync run (upsert, RLS)", "ratio"
    );
    for run in 1..=args.runs {
        let fetched = timed_parallel(args.parallel, |_| fetch_floor(&url, pages)).await?;
        let plain = timed_parallel(args.parallel, |_| {
            plain_insert(&admin, &schema, &url, pages)
        })
        .await?;
        let mut created = Vec::new();
        for _ in 0..args.parallel {
            created.push(
                world::create_integration(env, &sync, Uuid::now_v7(), &url, world::manual(), 0)
                    .await?,
            );
        }
        let runner = sync.svc.runner.clone();
        let started = Instant::now();
        let outcomes = futures::future::try_join_all(created.iter().map(|c| {
            let runner = runner.clone();
            let job = Job {
                tenant_id: c.tenant,
                integration_id: c.id,
                run_id: Uuid::now_v7(),
                mode: Mode::Full,
                priority: 5,
            };
            async move { runner.run(&job).await }
        }))
        .await
        .map_err(|e| anyhow::anyhow!("a run failed on our side: {e}"))?;
        let synced = started.elapsed();
        for outcome in &outcomes {
            match outcome {
                Some(tenantry_sync::domain::RunOutcome::Succeeded { records, .. })
                    if *records as usize == args.records => {}
                other => anyhow::bail!("a run did not write the catalogue: {other:?}"),
            }
        }
        // Every row is there, counted by the admin (RLS would hide them from anyone else).
        let ids: Vec<Uuid> = created.iter().map(|c| c.id).collect();
        let (stored,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.records WHERE integration_id = ANY($1)"
        )))
        .bind(&ids)
        .fetch_one(&admin)
        .await?;
        anyhow::ensure!(stored as f64 == total, "{stored} rows stored of {total}");
        let rate = |d: Duration| total / d.as_secs_f64();
        println!(
            "  {run:<5} {:>9.0} rec/s ({:>6.2} s) {:>9.0} rec/s ({:>6.2} s) {:>9.0} rec/s ({:>6.2} s) {:>6.2}x",
            rate(fetched),
            fetched.as_secs_f64(),
            rate(plain),
            plain.as_secs_f64(),
            rate(synced),
            synced.as_secs_f64(),
            synced.as_secs_f64() / plain.as_secs_f64()
        );
    }
    println!(
        "  ratio: sync's time over the plain INSERT's (goal: at least 20,000 records/s through sync); load now {}",
        world::load_average()
    );
    drop(sync);
    Ok(())
}

/// Runs `n` copies of `task` at once; answers the time until the last ended.
async fn timed_parallel<F, Fut>(n: usize, task: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    futures::future::try_join_all((0..n).map(task)).await?;
    Ok(started.elapsed())
}

/// One page's rows as the connector takes them: (external id, JSON).
async fn page_rows(
    http: &reqwest::Client,
    url: &str,
    page: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let body = http
        .get(format!("{url}?page={page}"))
        .header("authorization", crate::source::TOKEN)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let value: serde_json::Value = serde_json::from_slice(&body)?;
    let items = value["data"]["items"]
        .as_array()
        .context("the page has items")?;
    Ok(items
        .iter()
        .map(|item| (item["id"].to_string(), item.to_string()))
        .collect())
}

/// The pages fetched and parsed, nothing written.
async fn fetch_floor(url: &str, pages: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for page in 1..=pages {
        page_rows(&http, url, page).await?;
    }
    Ok(())
}

/// The pages fetched and parsed, each written by one plain multi-row `INSERT`.
async fn plain_insert(
    admin: &sqlx::PgPool,
    schema: &str,
    url: &str,
    pages: usize,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let integration = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO {schema}.bench_plain (integration_id, stream, external_id, data, bytes)
         SELECT $1, 'items', k.external_id, k.data::jsonb, k.bytes
         FROM UNNEST($2::text[], $3::text[], $4::int[]) AS k(external_id, data, bytes)"
    );
    for page in 1..=pages {
        let rows = page_rows(&http, url, page).await?;
        let sizes: Vec<i32> = rows.iter().map(|r| r.1.len() as i32).collect();
        let (ids, data): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(integration)
            .bind(&ids)
            .bind(&data)
            .bind(&sizes)
            .execute(admin)
            .await?;
    }
    Ok(())
}
