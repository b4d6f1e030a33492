//! From a quota event's append to its enforcement at a running gateway: `--rounds` times,
//! billing's `quota_threshold_crossed` (100%, plan: block traffic) is appended and a client
//! polls the tenant's host until the gateway answers 429; then a `quota_reset` lifts it.
//! Prints p50, p99 and max of append → first refused request.

use std::time::{Duration, Instant};

use clap::Parser;
use tenantry_bench::{append_billing, authed, ms, percentile};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_kit::Role;
use tenantry_kit::service::Service;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as gw, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_proto::tenant::v1::{self as tenant_api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::TestEnv;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    rounds: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let env = TestEnv::new().await;
    let mut common = env.common();
    // The upstream listens on loopback, which the outbound policy refuses unless allowed.
    common.egress_allow = "127.0.0.0/8".parse()?;
    let tenant_svc = env
        .start_with(
            &common,
            tenantry_tenant::TenantService::new(tenantry_tenant::TenantConfig::ephemeral()),
        )
        .await;
    let gateway = env
        .start_with(
            &common,
            tenantry_gateway::GatewayService::new(tenantry_gateway::GatewayConfig::ephemeral()),
        )
        .await;
    // An upstream answering 200.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_addr = upstream.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(upstream, axum::Router::new().fallback(|| async { "ok" })).await;
    });

    let slug = format!("q{}", &Uuid::new_v4().simple().to_string()[..8]);
    let created = TenantServiceClient::new(tenantry_testkit::channel(tenant_svc.addr).await)
        .create_tenant(authed(
            tenant_api::CreateTenantRequest {
                name: slug.clone(),
                slug: slug.clone(),
                r#type: pb::TenantType::Business as i32,
                settings: None,
            },
            &env.admin_token(),
        ))
        .await?
        .into_inner();
    let tenant = created.tenant.expect("tenant").tenant_id;
    let member = env.token(Some(Uuid::parse_str(&tenant)?), Role::Member);
    GatewayConfigServiceClient::new(tenantry_testkit::channel(gateway.addr).await)
        .upsert_route(authed(
            gw::UpsertRouteRequest {
                route: Some(gw::Route {
                    path_prefix: "/".into(),
                    algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
                    backends: vec![pb::Backend {
                        address: upstream_addr.to_string(),
                        weight: 1,
                    }],
                    ..Default::default()
                }),
            },
            &member,
        ))
        .await?;
    let store = env.event_store().await;
    append_billing(
        &store,
        &tenant,
        SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            quota_behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
            ..Default::default()
        }),
    )
    .await?;
    let host = format!("{slug}.localhost");
    let client = reqwest::Client::builder()
        .resolve(&host, gateway.data_addr)
        .build()?;
    let url = format!("http://{host}:{}/", gateway.data_addr.port());
    let status = || async {
        client
            .get(&url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let until = |want: u16| async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if status().await == want {
                return true;
            }
        }
        false
    };
    anyhow::ensure!(until(200).await, "the route never answered");

    let mut latencies = Vec::with_capacity(args.rounds);
    for _ in 0..args.rounds {
        let t0 = Instant::now();
        append_billing(
            &store,
            &tenant,
            SubscriptionEvent::QuotaThresholdCrossed(pb::QuotaThresholdCrossed {
                meter: "requests".into(),
                percent: 100,
                period_start: None,
                // What billing saw; the gateway acts on the percent alone.
                ..Default::default()
            }),
        )
        .await?;
        anyhow::ensure!(until(429).await, "the quota was never enforced");
        latencies.push(t0.elapsed());
        append_billing(
            &store,
            &tenant,
            SubscriptionEvent::QuotaReset(pb::QuotaReset {
                meter: "requests".into(),
                period_start: None,
            }),
        )
        .await?;
        anyhow::ensure!(until(200).await, "the quota was never lifted");
    }
    latencies.sort();
    println!(
        "quota event append → enforced at a running gateway, {} rounds: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.rounds,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    env.cleanup().await;
    Ok(())
}
