//! How long a gateway takes to rebuild its snapshot from the stream at start, and what the
//! snapshot costs in memory, with `--tenants` tenants (default 100,000), each with a tenant,
//! a route and a plan event in the log (three messages per tenant).

use std::time::Instant;

use clap::Parser;
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_contracts::gateway::RouteEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::aggregate::batch_of;
use tenantry_eventstore::{AggregateAddress, AppendRequest, CommandMeta};
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    tenants: usize,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let meta = CommandMeta {
        command_id: String::new(),
        actor: "bench".into(),
        correlation_id: String::new(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    };
    let started = Instant::now();
    let mut batch = Vec::new();
    for i in 0..args.tenants {
        let tenant = Uuid::now_v7().to_string();
        let route_id = Uuid::now_v7().to_string();
        let created = TenantEvent::Created(pb::TenantCreated {
            tenant_id: tenant.clone(),
            name: format!("t{i}"),
            slug: format!("t{i}"),
            ..Default::default()
        });
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
        let plan = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            requests_per_second: 100,
            burst: 200,
            ..Default::default()
        });
        let addresses = [
            AggregateAddress::for_events::<TenantEvent>(tenant.clone(), tenant.clone())?,
            AggregateAddress::for_events::<RouteEvent>(tenant.clone(), route_id)?,
            AggregateAddress::for_events::<SubscriptionEvent>(tenant.clone(), tenant.clone())?,
        ];
        let batches = [
            batch_of(&addresses[0], &[created], &meta),
            batch_of(&addresses[1], &[route], &meta),
            batch_of(&addresses[2], &[plan], &meta),
        ];
        for (address, b) in addresses.into_iter().zip(batches) {
            batch.push(AppendRequest {
                address,
                expected: None,
                message_id: Uuid::now_v7().to_string(),
                batch: b,
                traceparent: None,
                fingerprint: None,
            });
        }
        if batch.len() >= 3000 {
            for r in store.append_many(std::mem::take(&mut batch)).await {
                r?;
            }
        }
    }
    for r in store.append_many(batch).await {
        r?;
    }
    println!(
        "{} tenants: {} messages appended in {:.1} s",
        args.tenants,
        args.tenants * 3,
        started.elapsed().as_secs_f64()
    );

    let before = resident_bytes();
    let started = Instant::now();
    let (current, _applied, _follower) = tenantry_gateway::snapshot::follow::follow(
        &store,
        "localhost",
        tenantry_gateway::limit::Cluster::standalone(),
        std::sync::Arc::new(tenantry_kit::egress::Egress::system(Default::default())),
    )
    .await?;
    let took = started.elapsed();
    let snapshot = current.load();
    anyhow::ensure!(
        snapshot.tenants.len() == args.tenants,
        "only {} tenants in the snapshot",
        snapshot.tenants.len()
    );
    println!(
        "snapshot rebuilt from the stream in {:.2} s ({:.0} messages/s); resident memory +{:.0} MiB ({:.1} KB per tenant)",
        took.as_secs_f64(),
        (args.tenants * 3) as f64 / took.as_secs_f64(),
        resident_bytes().saturating_sub(before) as f64 / 1048576.0,
        resident_bytes().saturating_sub(before) as f64 / 1024.0 / args.tenants as f64
    );
    env.cleanup().await;
    Ok(())
}
