//! The per-request decision (host → tenant → status → route → quota → rate limit → backend)
//! with 1,000 and with 100,000 tenants' routes in the snapshot: the lookup must not degrade.
//! Also prints, for 100,000 tenants, the time to fold their events into a snapshot and the
//! resident memory the snapshot adds.
//!
//! Run: `cargo bench -p tenantry-gateway --bench decision`.

/// The gateway binary's allocator, so memory and locality are measured as they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_contracts::gateway::RouteEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::{EventPayload, StoredMessage};
use tenantry_gateway::decide::decide;
use tenantry_gateway::limit::{Cluster, ClusterConfig, Mode};
use tenantry_gateway::snapshot::builder::Builder;
use tenantry_gateway::snapshot::model::Snapshot;
use tenantry_proto::events::v1::{self as pb, Envelope, EventBatch};
use uuid::Uuid;

/// `event` of aggregate `aggregate_id` as the log delivers it, through its contract.
fn message<E: EventPayload>(
    position: u64,
    tenant: Uuid,
    aggregate_id: &str,
    event: E,
) -> StoredMessage {
    StoredMessage {
        position,
        subject: String::new(),
        batch: EventBatch {
            events: vec![Envelope {
                tenant_id: tenant.to_string(),
                aggregate_type: E::AGGREGATE_TYPE.into(),
                aggregate_id: aggregate_id.into(),
                event_type: event.event_type().into(),
                payload: event.encode_payload(),
                ..Default::default()
            }],
        },
        traceparent: None,
    }
}

/// A gateway in a cluster (its Redis is not reached here: limiters decide locally, as they
/// do between two syncs).
fn cluster() -> std::sync::Arc<Cluster> {
    Cluster::new(
        ClusterConfig {
            redis_url: "redis://127.0.0.1:6379".into(),
            strict: false,
            replicas: 1,
            sync_interval: std::time::Duration::from_millis(50),
            timeout: std::time::Duration::from_millis(100),
            namespace: "bench:".into(),
        },
        "bench".into(),
    )
    .expect("cluster settings")
}

/// A snapshot of `n` tenants, each with a route to two backends and a plan limit, its
/// limiters synced with the cluster.
fn snapshot(n: usize) -> std::sync::Arc<Snapshot> {
    let mut builder = Builder::new("localhost", cluster());
    let mut position = 0;
    for i in 0..n {
        let tenant = Uuid::from_u128(i as u128 + 1);
        let slug = format!("t{i}");
        let created = TenantEvent::Created(pb::TenantCreated {
            tenant_id: tenant.to_string(),
            name: slug.clone(),
            slug,
            ..Default::default()
        });
        position += 1;
        builder.apply(&message(position, tenant, &tenant.to_string(), created));
        let route_id = Uuid::from_u128(u128::MAX - i as u128).to_string();
        let route = RouteEvent::Upserted(pb::RouteUpserted {
            route_id: route_id.clone(),
            path_prefix: "/".into(),
            algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
            backends: vec![
                pb::Backend {
                    address: "127.0.0.1:9001".into(),
                    weight: 1,
                },
                pb::Backend {
                    address: "127.0.0.1:9002".into(),
                    weight: 1,
                },
            ],
            ..Default::default()
        });
        position += 1;
        builder.apply(&message(position, tenant, &route_id, route));
        let plan = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            requests_per_second: 1_000_000_000,
            burst: 1_000_000_000,
            quota_behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
            ..Default::default()
        });
        position += 1;
        builder.apply(&message(position, tenant, &tenant.to_string(), plan));
    }
    let snapshot = builder.build();
    for tenant in snapshot.tenants.values() {
        tenant.limiter.pull_up(std::time::Duration::ZERO);
    }
    snapshot
}

/// Tenant `i`'s host (`t{i}.localhost`), written into `buf`. A real request's `Host` header
/// was just parsed and is in the cache; reading it from a table of 100,000 strings would add
/// two cache misses of the benchmark's own to every decision.
fn host_of(mut i: usize, buf: &mut [u8; 32]) -> &str {
    const SUFFIX: &[u8] = b".localhost";
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (i % 10) as u8;
        n += 1;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    buf[0] = b't';
    for (k, d) in digits[..n].iter().rev().enumerate() {
        buf[1 + k] = *d;
    }
    buf[1 + n..1 + n + SUFFIX.len()].copy_from_slice(SUFFIX);
    std::str::from_utf8(&buf[..1 + n + SUFFIX.len()]).unwrap_or_default()
}

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn bench(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("decision");
    for n in [1_000usize, 100_000] {
        let before = resident_bytes();
        let started = Instant::now();
        let snap = snapshot(n);
        let took = started.elapsed();
        let grew = resident_bytes().saturating_sub(before);
        eprintln!(
            "{n} tenants: events folded into a snapshot in {:.0} ms; resident memory +{:.1} MiB ({:.0} bytes per tenant)",
            took.as_secs_f64() * 1000.0,
            grew as f64 / 1048576.0,
            grew as f64 / n as f64
        );
        let mut i = 0usize;
        let mut buf = [0u8; 32];
        group.bench_function(format!("{n}_tenants"), |b| {
            b.iter(|| {
                i = (i + 7919) % n;
                let forward = decide(
                    &snap,
                    std::hint::black_box(host_of(i, &mut buf)),
                    "/api/orders",
                    &headers,
                    Mode::Cluster { strict: false },
                    // The proxy reads the clock once a request (for its latency metric too).
                    Instant::now(),
                );
                assert!(forward.is_ok());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
