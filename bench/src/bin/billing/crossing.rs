//! From the request that crosses a tenant's monthly quota to the first one the gateway
//! refuses, through the closed loop (gateway → `USAGE` → billing's roll-up → a crossing on the
//! log → the gateway): `--tenants` tenants on a plan with `--quota` requests a month and
//! BLOCK_TRAFFIC, each sent `--rate` requests a second. Their starts are spread over a second,
//! so the crossings fall at every phase of the gateway's once-a-second usage report.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tenantry_bench::{authed, ms, percentile};
use tenantry_billing::{BillingConfig, BillingService};
use tenantry_contracts::tenant::TenantEvent;
use tenantry_kit::Role;
use tenantry_kit::service::Service as _;
use tenantry_proto::billing::v1::{self as billing, billing_service_client::BillingServiceClient};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as gw, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_testkit::TestEnv;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::world::until;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Tenants measured (all at once).
    #[arg(long, default_value_t = 20)]
    tenants: usize,
    /// The plan's monthly request quota.
    #[arg(long, default_value_t = 1_000)]
    quota: u64,
    /// Requests a second sent for each tenant (paced, one at a time).
    #[arg(long, default_value_t = 100)]
    rate: u32,
}

/// One tenant's crossing.
struct Crossing {
    /// From the response to the request that made `quota` accepted to the first 429.
    delay: Duration,
    /// Accepted − quota.
    overshoot: u64,
}

struct World {
    env: TestEnv,
    billing: BillingServiceClient<Channel>,
    routes: GatewayConfigServiceClient<Channel>,
    data: SocketAddr,
    upstream: SocketAddr,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let env = TestEnv::new().await;
    let mut common = env.common();
    // The upstream listens on loopback, which the outbound policy refuses unless allowed.
    common.egress_allow = "127.0.0.0/8".parse()?;
    let gateway = env
        .start_with(
            &common,
            tenantry_gateway::GatewayService::new(tenantry_gateway::GatewayConfig::ephemeral()),
        )
        .await;
    // The system clock: the crossings are in the current month, as the gateway's reports.
    let billing = env
        .start_with(&common, BillingService::new(BillingConfig::ephemeral()))
        .await;
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_addr = upstream.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(upstream, axum::Router::new().fallback(|| async { "ok" })).await;
    });
    let world = World {
        billing: BillingServiceClient::new(tenantry_testkit::channel(billing.addr).await),
        routes: GatewayConfigServiceClient::new(tenantry_testkit::channel(gateway.addr).await),
        data: gateway.data_addr,
        upstream: upstream_addr,
        env,
    };
    let outcome = measure(&world, &args).await;
    crate::world::cleanup(&world.env).await;
    outcome
}

async fn measure(world: &World, args: &Args) -> anyhow::Result<()> {
    world
        .billing
        .clone()
        .define_plan(authed(
            billing::DefinePlanRequest {
                plan: Some(billing::Plan {
                    name: "metered".into(),
                    price_minor: 1_000,
                    currency: "BRL".into(),
                    interval: pb::BillingInterval::Monthly as i32,
                    limits: Some(pb::PlanLimitsChanged {
                        meters: vec![pb::MeterQuota {
                            meter: "requests".into(),
                            limit: args.quota,
                            behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            &world.env.admin_token(),
        ))
        .await?;
    let hosts =
        futures::future::try_join_all((0..args.tenants).map(|_| world.tenant("metered"))).await?;
    println!(
        "quota crossing → first refusal: {} tenants, quota {} requests, {} requests/s each",
        args.tenants, args.quota, args.rate
    );

    let start = Instant::now() + Duration::from_millis(100);
    let every = Duration::from_secs(1) / args.rate.max(1);
    let runs = hosts.iter().enumerate().map(|(i, host)| {
        // Spread over one report interval.
        let offset = Duration::from_secs(1) * i as u32 / args.tenants.max(1) as u32;
        world.drive(host, start + offset, every, args.quota)
    });
    let outcomes = futures::future::join_all(runs).await;
    let mut delays = Vec::new();
    let mut overshoots = Vec::new();
    let mut missed = 0;
    for outcome in outcomes {
        match outcome? {
            Some(c) => {
                delays.push(c.delay);
                overshoots.push(c.overshoot);
            }
            None => missed += 1,
        }
    }
    delays.sort();
    overshoots.sort_unstable();
    let at = |p: f64| {
        let rank = ((p / 100.0) * (overshoots.len().saturating_sub(1)) as f64).round() as usize;
        overshoots.get(rank).copied().unwrap_or(0)
    };
    println!(
        "  crossing → first 429   p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(percentile(&delays, 50.0)),
        ms(percentile(&delays, 99.0)),
        ms(delays.last().copied().unwrap_or_default())
    );
    println!(
        "  overshoot (accepted − quota)   p50 {}, p99 {}, max {} requests ({:.1}%, {:.1}% and {:.1}% of the quota)",
        at(50.0),
        at(99.0),
        at(100.0),
        100.0 * at(50.0) as f64 / args.quota as f64,
        100.0 * at(99.0) as f64 / args.quota as f64,
        100.0 * at(100.0) as f64 / args.quota as f64,
    );
    anyhow::ensure!(missed == 0, "{missed} tenants were never refused");
    Ok(())
}

impl World {
    /// A tenant created as the tenant service would, moved to `plan`, with a route to the
    /// upstream; returns its host once the gateway serves it (one request accepted).
    async fn tenant(&self, plan: &str) -> anyhow::Result<String> {
        let id = Uuid::now_v7();
        let slug = format!("q{}", &id.simple().to_string()[20..]);
        let store = self.env.event_store().await;
        tenantry_testkit::append(
            &store,
            &id.to_string(),
            &id.to_string(),
            TenantEvent::Created(pb::TenantCreated {
                tenant_id: id.to_string(),
                name: slug.clone(),
                slug: slug.clone(),
                r#type: pb::TenantType::Business as i32,
                ..Default::default()
            }),
        )
        .await?;
        let owner = self.env.token(Some(id), Role::Owner);
        // Billing opens the subscription on the tenant's creation; once the read model shows
        // it, the plan changes. (Asked before the subscription is open, `ChangePlan` caches
        // the empty aggregate and refuses "not found" from then on: see bench/README.md.)
        until("the subscription", Duration::from_secs(30), || {
            let (mut billing, owner) = (self.billing.clone(), owner.clone());
            async move {
                billing
                    .get_subscription(authed(
                        billing::GetSubscriptionRequest {
                            tenant_id: id.to_string(),
                            min_position: 0,
                        },
                        &owner,
                    ))
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().subscription)
            }
        })
        .await?;
        until("the plan change", Duration::from_secs(30), || {
            let (mut billing, owner) = (self.billing.clone(), owner.clone());
            async move {
                billing
                    .change_plan(authed(
                        billing::ChangePlanRequest {
                            tenant_id: id.to_string(),
                            plan: plan.into(),
                        },
                        &owner,
                    ))
                    .await
                    .ok()
            }
        })
        .await?;
        self.routes
            .clone()
            .upsert_route(authed(
                gw::UpsertRouteRequest {
                    route: Some(gw::Route {
                        path_prefix: "/".into(),
                        algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
                        backends: vec![pb::Backend {
                            address: self.upstream.to_string(),
                            weight: 1,
                        }],
                        ..Default::default()
                    }),
                },
                &self.env.token(Some(id), Role::Member),
            ))
            .await?;
        let host = format!("{slug}.localhost");
        let client = self.client(&host)?;
        // Only forwarded requests are metered: the 404s before the route arrives are not.
        until("the route", Duration::from_secs(30), || async {
            (self.get(&client, &host).await == 200).then_some(())
        })
        .await?;
        Ok(host)
    }

    fn client(&self, host: &str) -> anyhow::Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .resolve(host, self.data)
            .build()?)
    }

    async fn get(&self, client: &reqwest::Client, host: &str) -> u16 {
        client
            .get(format!("http://{host}:{}/", self.data.port()))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Sends `host` a request every `every` from `start` until the first 429 (or 10 s past
    /// the crossing); `None` when it never came.
    async fn drive(
        &self,
        host: &str,
        start: Instant,
        every: Duration,
        quota: u64,
    ) -> anyhow::Result<Option<Crossing>> {
        let client = self.client(host)?;
        let mut accepted = 1u64; // the route check's request
        let mut crossed: Option<Instant> = None;
        let mut sent = 0u32;
        loop {
            tokio::time::sleep_until((start + every * sent).into()).await;
            let status = self.get(&client, host).await;
            sent += 1;
            match status {
                200 => {
                    accepted += 1;
                    if accepted == quota {
                        crossed = Some(Instant::now());
                    }
                }
                429 => {
                    let Some(crossed) = crossed else {
                        anyhow::bail!("{host} refused before its quota ({accepted} accepted)");
                    };
                    return Ok(Some(Crossing {
                        delay: crossed.elapsed(),
                        overshoot: accepted - quota,
                    }));
                }
                other => anyhow::bail!("{host} answered {other}"),
            }
            if crossed.is_some_and(|c| c.elapsed() > Duration::from_secs(10)) {
                return Ok(None);
            }
        }
    }
}
