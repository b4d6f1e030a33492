//! The closed quota loop (issue 19): the gateway meters a tenant's requests onto `USAGE`,
//! billing rolls them up and appends 80/90/100% crossings to the log, and the gateway, which
//! follows the log, refuses the tenant's traffic; an upgrade lifts the block and a new month
//! resets it. Real NATS, Postgres, gateway and billing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantry_billing::domain::period::{add_months, month_start};
use tenantry_billing::{BillingConfig, BillingService};
use tenantry_contracts::tenant::TenantEvent;
use tenantry_kit::{Clock, ManualClock, Role};
use tenantry_proto::billing::v1::{self as billing, billing_service_client::BillingServiceClient};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as gw, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_testkit::{TestEnv, eventually};
use tonic::transport::Channel;
use uuid::Uuid;

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn plan(name: &str, price: i64, limit: u64) -> billing::Plan {
    billing::Plan {
        name: name.into(),
        price_minor: price,
        currency: "BRL".into(),
        interval: pb::BillingInterval::Monthly as i32,
        limits: Some(pb::PlanLimitsChanged {
            meters: vec![pb::MeterQuota {
                meter: "requests".into(),
                limit,
                behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct World {
    env: TestEnv,
    billing: BillingServiceClient<Channel>,
    routes: GatewayConfigServiceClient<Channel>,
    data: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
}

impl World {
    /// A tenant created as the tenant service would, on `plan`, with a route to the upstream;
    /// returns its id and gateway host once the gateway serves it.
    async fn tenant(&self, plan: &str) -> (Uuid, String) {
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
        .await
        .unwrap();
        let owner = self.env.token(Some(id), Role::Owner);
        // Billing opens the subscription on the tenant's creation; then the plan changes.
        eventually("the subscription", Duration::from_secs(10), || {
            let (mut billing, owner) = (self.billing.clone(), owner.clone());
            async move {
                billing
                    .change_plan(with_token(
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
        .await;
        self.routes
            .clone()
            .upsert_route(with_token(
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
            .await
            .unwrap();
        let host = format!("{slug}.localhost");
        let client = self.client(&host);
        eventually("the route", Duration::from_secs(10), || async {
            (self.get(&client, &host).await == 200).then_some(())
        })
        .await;
        (id, host)
    }

    fn client(&self, host: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(host, self.data)
            .build()
            .unwrap()
    }

    async fn get(&self, client: &reqwest::Client, host: &str) -> u16 {
        client
            .get(format!("http://{host}:{}/", self.data.port()))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    async fn alerts(&self, tenant: Uuid) -> Vec<u32> {
        let mut alerts: Vec<u32> = self
            .billing
            .clone()
            .list_alerts(with_token(
                billing::ListAlertsRequest {
                    tenant_id: tenant.to_string(),
                    min_position: 0,
                },
                &self.env.token(Some(tenant), Role::Viewer),
            ))
            .await
            .unwrap()
            .into_inner()
            .alerts
            .iter()
            .map(|a| a.percent)
            .collect();
        alerts.sort_unstable();
        alerts
    }
}

async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_gateway_blocks_a_tenant_over_its_quota_until_an_upgrade_or_a_new_month() {
    let env = TestEnv::new().await;
    let mut common = env.common();
    common.egress_allow = "127.0.0.0/8".parse().unwrap();
    let clock = ManualClock::new(chrono::Utc::now());
    let (gateway, gateway_channel) =
        common::start_gateway(&env, &common, tenantry_gateway::GatewayConfig::ephemeral()).await;
    let billing_svc = env
        .start_with(
            &common,
            BillingService {
                config: BillingConfig::ephemeral(),
                clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
            },
        )
        .await;
    let world = World {
        billing: BillingServiceClient::new(tenantry_testkit::channel(billing_svc.addr).await),
        routes: GatewayConfigServiceClient::new(gateway_channel),
        data: gateway.data_addr,
        upstream: upstream().await,
        env,
    };
    let admin = world.env.admin_token();
    for p in [
        plan("metered", 1_000, 1_000),
        plan("roomy", 9_000, 1_000_000),
    ] {
        world
            .billing
            .clone()
            .define_plan(with_token(
                billing::DefinePlanRequest { plan: Some(p) },
                &admin,
            ))
            .await
            .unwrap();
    }
    let (tenant, host) = world.tenant("metered").await;
    let client = world.client(&host);

    // 1,200 requests at about 150 a second (and on, up to 2.5 s past the 1,000th accepted,
    // should the block not have come yet).
    let every = Duration::from_micros(1_000_000 / 150);
    let (mut accepted, mut sent) = (1u64, 1u64); // the route check's request counted
    let mut thousandth: Option<Instant> = None;
    let mut refused_at: Option<Instant> = None;
    let start = Instant::now();
    while sent < 1_200
        || (refused_at.is_none()
            && thousandth.is_none_or(|t| t.elapsed() < Duration::from_millis(2_500)))
    {
        let status = world.get(&client, &host).await;
        sent += 1;
        match status {
            200 => {
                accepted += 1;
                if accepted == 1_000 {
                    thousandth = Some(Instant::now());
                }
            }
            429 => {
                refused_at.get_or_insert_with(Instant::now);
            }
            other => panic!("unexpected status {other}"),
        }
        if sent >= 3_000 {
            break;
        }
        tokio::time::sleep_until((start + every * sent as u32).into()).await;
    }
    let thousandth = thousandth.expect("1,000 requests were accepted");
    let refused_at = refused_at.expect("the gateway refused the tenant's traffic");
    let delay = refused_at.duration_since(thousandth);
    let overshoot = accepted - 1_000;
    eprintln!("first refusal {delay:?} after the 1,000th request; overshoot {overshoot} requests");
    assert!(
        delay < Duration::from_secs(2),
        "refused {delay:?} after the 1,000th"
    );
    // At 150 requests a second, 2 s of traffic at most gets through past the quota.
    assert!(overshoot <= 300, "overshoot {overshoot}");
    eventually("the three alerts", Duration::from_secs(5), || async {
        (world.alerts(tenant).await == [80, 90, 100]).then_some(())
    })
    .await;

    // An upgrade lifts the block within a second.
    let upgraded = Instant::now();
    world
        .billing
        .clone()
        .change_plan(with_token(
            billing::ChangePlanRequest {
                tenant_id: tenant.to_string(),
                plan: "roomy".into(),
            },
            &world.env.token(Some(tenant), Role::Owner),
        ))
        .await
        .unwrap();
    eventually("the block lifted", Duration::from_secs(1), || async {
        (world.get(&client, &host).await == 200).then_some(())
    })
    .await;
    eprintln!("block lifted {:?} after the upgrade", upgraded.elapsed());

    // Another tenant over its quota is let through again when a new month begins.
    let (other, other_host) = world.tenant("metered").await;
    let other_client = world.client(&other_host);
    for _ in 0..1_100 {
        world.get(&other_client, &other_host).await;
    }
    eventually(
        "the other tenant blocked",
        Duration::from_secs(5),
        || async { (world.get(&other_client, &other_host).await == 429).then_some(()) },
    )
    .await;
    let next = add_months(month_start(clock.now()), 1);
    clock.advance(next - clock.now() + chrono::Duration::seconds(1));
    eventually("the new month's reset", Duration::from_secs(5), || async {
        (world.get(&other_client, &other_host).await == 200).then_some(())
    })
    .await;
    assert_eq!(world.alerts(other).await, [80, 90, 100]);
}
