//! Event store figures:
//! 1. pipelined appends with optimistic concurrency to 10,000 distinct aggregates, beside raw
//!    JetStream async publishes of the same payloads (no headers) to an identical stream;
//! 2. the tenant projection's apply rate into Postgres and the time to rebuild 1,000,000
//!    events into fresh tables.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use futures::future::join_all;
use prost::Message;
use tenantry_bench::median;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::aggregate::batch_of;
use tenantry_eventstore::{
    AggregateAddress, AppendRequest, CommandMeta, EventStore, ProjectionRunner, RunnerConfig,
    StreamNames,
};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Distinct aggregates per append run.
    #[arg(long, default_value_t = 10_000)]
    aggregates: usize,
    /// Runs of each append variant (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Tenants in the projection run; each gets `events_per_tenant` events.
    #[arg(long, default_value_t = 100_000)]
    tenants: usize,
    #[arg(long, default_value_t = 10)]
    events_per_tenant: usize,
    /// Most messages per projection transaction (the runner's default when omitted).
    #[arg(long)]
    batch: Option<usize>,
}

fn meta(i: usize) -> CommandMeta {
    CommandMeta {
        command_id: format!("bench-{i}-{}", Uuid::now_v7().simple()),
        actor: "bench".into(),
        correlation_id: String::new(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    }
}

fn created(id: Uuid, i: usize) -> TenantEvent {
    TenantEvent::Created(pb::TenantCreated {
        tenant_id: id.to_string(),
        name: format!("Tenant {i}"),
        slug: format!("bench-{i}"),
        r#type: pb::TenantType::Business as i32,
        settings: Some(pb::TenantSettings {
            timezone: "UTC".into(),
            currency: "USD".into(),
            language: "en".into(),
            data_retention_days: 365,
            limits: None,
        }),
        trial_ends_at: None,
    })
}

fn updated(days: u32) -> TenantEvent {
    TenantEvent::SettingsUpdated(pb::TenantSettingsUpdated {
        settings: Some(pb::TenantSettings {
            timezone: "UTC".into(),
            currency: "EUR".into(),
            language: "en".into(),
            data_retention_days: days,
            limits: None,
        }),
    })
}

fn requests(n: usize) -> Vec<AppendRequest> {
    (0..n)
        .map(|i| {
            let id = Uuid::now_v7();
            let address =
                AggregateAddress::for_events::<TenantEvent>(id.to_string(), id.to_string())
                    .expect("uuid tokens");
            let meta = meta(i);
            AppendRequest {
                batch: batch_of(&address, &[created(id, i)], &meta),
                address,
                expected: Some(0),
                message_id: meta.command_id,
                traceparent: None,
                fingerprint: None,
            }
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let store = env.event_store().await;

    // Raw baseline: an identical stream (same settings) under its own prefix.
    let raw_store = EventStore::open(
        env.nats.clone(),
        StreamNames::new(Some(&format!("{}raw", env.id)))?,
        1,
    )
    .await?;
    let raw_root = raw_store.root().to_owned();

    println!(
        "appends to {} distinct aggregates, median of {} runs",
        args.aggregates, args.runs
    );
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let batch = requests(args.aggregates);
        let payloads: Vec<(String, Bytes)> = batch
            .iter()
            .map(|r| {
                (
                    r.address.subject(&raw_root),
                    Bytes::from(r.batch.encode_to_vec()),
                )
            })
            .collect();

        let started = Instant::now();
        let js = raw_store.jetstream();
        // Same pipelining as `append_many`: every publish is in flight before acks are awaited.
        let sends = payloads
            .into_iter()
            .map(|(subject, payload)| async move { js.publish(subject, payload).await?.await });
        for r in join_all(sends).await {
            r?;
        }
        raw.push(args.aggregates as f64 / started.elapsed().as_secs_f64());

        let started = Instant::now();
        for r in store.append_many(batch).await {
            r?;
        }
        ours.push(args.aggregates as f64 / started.elapsed().as_secs_f64());
    }
    let (ours, raw) = (median(ours), median(raw));
    println!("  raw JetStream async publish     {raw:>10.0} msg/s");
    println!(
        "  append (expected seq + msg id)  {ours:>10.0} msg/s   {:.0}% of raw",
        100.0 * ours / raw
    );

    // The projection: `tenants` tenants with `events_per_tenant` events each, appended
    // pipelined, then projected from position 1 into fresh tables.
    let total = args.tenants * args.events_per_tenant;
    println!(
        "\nprojection: {} tenants x {} events = {total} events",
        args.tenants, args.events_per_tenant
    );
    let proj_env = TestEnv::new().await;
    let proj_store = proj_env.event_store().await;
    let started = Instant::now();
    let ids: Vec<Uuid> = (0..args.tenants).map(|_| Uuid::now_v7()).collect();
    let mut versions = vec![0u64; args.tenants];
    for round in 0..args.events_per_tenant {
        for chunk_start in (0..args.tenants).step_by(20_000) {
            let chunk = chunk_start..(chunk_start + 20_000).min(args.tenants);
            let batch: Vec<AppendRequest> = chunk
                .clone()
                .map(|i| {
                    let id = ids[i];
                    let address =
                        AggregateAddress::for_events::<TenantEvent>(id.to_string(), id.to_string())
                            .expect("uuid tokens");
                    let event = if round == 0 {
                        created(id, i)
                    } else {
                        updated(round as u32)
                    };
                    let meta = meta(i);
                    AppendRequest {
                        batch: batch_of(&address, &[event], &meta),
                        address,
                        expected: Some(versions[i]),
                        message_id: meta.command_id,
                        traceparent: None,
                        fingerprint: None,
                    }
                })
                .collect();
            for (i, r) in chunk.zip(proj_store.append_many(batch).await) {
                versions[i] = r.context("append")?.position;
            }
        }
    }
    println!("  appended in {:.1} s", started.elapsed().as_secs_f64());

    let db = proj_env.db("tenant");
    db.prepare(&tenantry_tenant::MIGRATOR).await?;
    let pool = db.service_pool().await?;
    let runner = ProjectionRunner::new(
        proj_store.clone(),
        pool,
        tenantry_tenant::projection::TenantsProjection::default(),
        RunnerConfig {
            batch_size: args.batch.unwrap_or(RunnerConfig::default().batch_size),
            ..Default::default()
        },
    );
    let started = Instant::now();
    let reached = runner.catch_up().await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  rebuilt {total} events from position 1 in {elapsed:.1} s: {:.0} events/s (checkpoint {reached})",
        total as f64 / elapsed
    );
    env.cleanup().await;
    proj_env.cleanup().await;
    Ok(())
}
