//! Tenant API figures, with the `tenantry-tenant` binary started as its own process on the
//! real NATS/Postgres:
//! 1. `CreateTenant` end to end over gRPC with N concurrent clients: throughput, p50, p99
//!    (open loop with `--rate`), and the service's own p50/p99 from its `/metrics`;
//! 2. read-your-writes: after a create returns, `GetTenant(min_position)` beside a plain
//!    `GetTenant` of a tenant already projected; the difference is the extra wait;
//! 3. a baseline: `GetTenant` of one projected row under the same offered load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tenantry_bench::{authed, http_get, ms, percentile, spawn_binary, world_env};
use tenantry_proto::events::v1::TenantType;
use tenantry_proto::tenant::v1::{self as api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::TestEnv;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Offered load in commands/s shared by all clients (open loop); 0 = as fast as possible
    /// (closed loop). Latency is measured from each command's scheduled send time, so a
    /// stalled server cannot hide its queueing (no coordinated omission).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Create-then-read iterations for the read-your-writes figure.
    #[arg(long, default_value_t = 2000)]
    reads: usize,
}

fn create_request() -> api::CreateTenantRequest {
    let slug = format!("b-{}", Uuid::new_v4().simple());
    api::CreateTenantRequest {
        name: slug.clone(),
        slug,
        r#type: TenantType::Business as i32,
        settings: None,
    }
}

/// The release `tenantry-tenant` binary in this run's own stream prefix and schema.
async fn spawn_service(
    env: &TestEnv,
) -> anyhow::Result<(std::net::SocketAddr, tokio::process::Child)> {
    let common = env.common();
    spawn_binary(
        "tenantry-tenant",
        "TENANTRY_TENANT_LISTEN",
        &[
            world_env(&common),
            vec![
                ("TENANTRY_DATABASE_URL", common.database_url.clone()),
                ("TENANTRY_JWKS", common.jwks.clone()),
                ("TENANTRY_TENANT_DB_SCHEMA", env.schema("tenant")),
            ],
        ]
        .concat(),
    )
    .await
}

/// What one load run measured.
struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: f64,
}

impl Run {
    fn print(&self, what: &str) {
        println!(
            "  {what:<32} {:>6.0} req/s   p50 {:.2} ms   p99 {:.2} ms   ({} ok, {} errors)",
            self.latencies.len() as f64 / self.elapsed,
            ms(percentile(&self.latencies, 50.0)),
            ms(percentile(&self.latencies, 99.0)),
            self.latencies.len(),
            self.errors
        );
    }
}

/// `args.clients` clients for `args.seconds`: `CreateTenant`, or `GetTenant` of `get` when
/// given; open loop at `args.rate` (latency from each request's scheduled time) or closed.
async fn load(
    channels: &[Channel],
    token: &str,
    args: &Args,
    get: Option<String>,
) -> anyhow::Result<Run> {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let period =
        (args.rate > 0).then(|| Duration::from_secs_f64(args.clients as f64 / args.rate as f64));
    let workers: Vec<_> = (0..args.clients)
        .map(|i| {
            let mut client = TenantServiceClient::new(channels[i % channels.len()].clone());
            let (token, latencies, get) = (token.to_owned(), latencies.clone(), get.clone());
            let offset = period.map(|p| p.mul_f64(i as f64 / args.clients as f64));
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut errors = 0usize;
                let mut ticker = period.zip(offset).map(|(p, offset)| {
                    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + offset, p);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    t
                });
                while Instant::now() < deadline {
                    let t = match ticker.as_mut() {
                        Some(ticker) => ticker.tick().await.into_std(),
                        None => Instant::now(),
                    };
                    let ok = match &get {
                        None => client
                            .create_tenant(authed(create_request(), &token))
                            .await
                            .is_ok(),
                        Some(id) => client
                            .get_tenant(authed(
                                api::GetTenantRequest {
                                    tenant_id: id.clone(),
                                    min_position: 0,
                                },
                                &token,
                            ))
                            .await
                            .is_ok(),
                    };
                    if ok {
                        mine.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                latencies.lock().await.extend(mine);
                errors
            })
        })
        .collect();
    let mut errors = 0;
    for w in workers {
        errors += w.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort_unstable();
    Ok(Run {
        latencies,
        errors,
        elapsed,
    })
}

/// `/metrics` of the service.
async fn scrape(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    http_get(addr, "/metrics").await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let (addr, service) = spawn_service(&env).await?;
    let token = env.admin_token();
    // Several HTTP/2 connections, as several client processes would have.
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await?,
        );
    }

    // Warm-up.
    let mut c = TenantServiceClient::new(channels[0].clone());
    for _ in 0..200 {
        c.create_tenant(authed(create_request(), &token)).await?;
    }

    let create = load(&channels, &token, &args, None).await?;
    let mode = if args.rate > 0 {
        format!("offered {}/s", args.rate)
    } else {
        "closed loop".to_owned()
    };
    println!(
        "{} concurrent clients, {} s, {mode}",
        args.clients, args.seconds
    );
    create.print("CreateTenant");

    // The service's own view (request start to response, without the client's queueing).
    for line in scrape(addr).await?.lines() {
        if line.starts_with("tenantry_grpc_request_duration_seconds{")
            && line.contains("CreateTenant")
            && line.contains("quantile=\"0.5\"")
            || line.contains("CreateTenant") && line.contains("quantile=\"0.99\"")
        {
            println!("  server side: {line}");
        }
    }

    // Read your writes, one client at a time so the figure is the wait, not queueing.
    let known = c
        .create_tenant(authed(create_request(), &token))
        .await?
        .into_inner();
    let known_id = known.tenant.unwrap_or_default().tenant_id;
    // Once this read returns, the projection has caught up with everything above.
    c.get_tenant(authed(
        api::GetTenantRequest {
            tenant_id: known_id.clone(),
            min_position: known.position,
        },
        &token,
    ))
    .await?;
    let (mut fresh, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..args.reads {
        let created = c
            .create_tenant(authed(create_request(), &token))
            .await?
            .into_inner();
        let id = created.tenant.unwrap_or_default().tenant_id;
        let t = Instant::now();
        c.get_tenant(authed(
            api::GetTenantRequest {
                tenant_id: id,
                min_position: created.position,
            },
            &token,
        ))
        .await?;
        fresh.push(t.elapsed());
        let t = Instant::now();
        c.get_tenant(authed(
            api::GetTenantRequest {
                tenant_id: known_id.clone(),
                min_position: 0,
            },
            &token,
        ))
        .await?;
        plain.push(t.elapsed());
    }
    // Baseline under the same offered load: a read of one projected row (a request that
    // touches neither NATS nor a write), to show what the machine and the load generator
    // add to any request's tail.
    let baseline = load(&channels, &token, &args, Some(known_id.clone())).await?;
    println!();
    baseline.print("GetTenant (baseline, same load)");

    fresh.sort_unstable();
    plain.sort_unstable();
    println!(
        "\nGetTenant right after CreateTenant returned ({} iterations)",
        args.reads
    );
    println!(
        "  with min_position: p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&fresh, 50.0)),
        ms(percentile(&fresh, 99.0))
    );
    println!(
        "  already projected: p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&plain, 50.0)),
        ms(percentile(&plain, 99.0))
    );
    println!(
        "  extra wait for read-your-writes: p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&fresh, 50.0).saturating_sub(percentile(&plain, 50.0))),
        ms(percentile(&fresh, 99.0).saturating_sub(percentile(&plain, 99.0)))
    );
    drop(service);
    env.cleanup().await;
    Ok(())
}
