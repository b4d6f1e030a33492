//! Item 17, usage reports pile up while NATS is down: one report per tenant waits, the rest is
//! coalesced, nothing is lost or counted twice.

use std::time::{Duration, Instant};

use tenantry_contracts::gateway::RouteEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_gateway::GatewayService;
use tenantry_kit::service::Service;
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::common::{self, Upstream};
use super::support::{RR, usage_of};
use tenantry_testkit::NatsServer;

#[tokio::test]
async fn attack_usage_reports_do_not_pile_up_while_nats_is_down() {
    // A NATS of the test's own, to stop: the shared one serves every other test.
    let mut nats = NatsServer::start().await;
    let env = tenantry_testkit::TestEnv::new().await;
    let mut settings = env.common();
    settings.nats_url = nats.url();
    let names = tenantry_eventstore::StreamNames::new(settings.stream_prefix.as_deref()).unwrap();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let store = tenantry_eventstore::EventStore::open(client, names.clone(), 1)
        .await
        .unwrap();
    let tenant = Uuid::now_v7();
    let slug = format!("t{}", &Uuid::new_v4().simple().to_string()[..10]);
    let created = TenantEvent::Created(pb::TenantCreated {
        tenant_id: tenant.to_string(),
        slug: slug.clone(),
        ..Default::default()
    });
    tenantry_testkit::append(&store, &tenant.to_string(), &tenant.to_string(), created)
        .await
        .unwrap();
    let up = Upstream::start("a").await;
    let upserted = RouteEvent::Upserted(pb::RouteUpserted {
        route_id: "r1".into(),
        path_prefix: "/".into(),
        algorithm: RR as i32,
        backends: vec![pb::Backend {
            address: up.addr.to_string(),
            weight: 1,
        }],
        ..Default::default()
    });
    tenantry_testkit::append(&store, &tenant.to_string(), "r1", upserted)
        .await
        .unwrap();
    common::allow_loopback(&mut settings);
    let gateway = env
        .start_with(
            &settings,
            GatewayService::new(tenantry_gateway::GatewayConfig::ephemeral()),
        )
        .await;
    let host = format!("{slug}.localhost");
    let (c, url) = common::Harness::client_to(&gateway, &host, "/");
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.get(&url).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "the route never answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything so far reported: the outage starts from a clean slate.
    let (before, _) = usage_of(store.jetstream(), &names, tenant, |u| u.requests >= 1).await;
    assert!(before.requests >= 1);

    nats.stop();
    // Traffic through the outage, over several reporting rounds (one a second).
    let mut during = 0;
    let until = Instant::now() + Duration::from_millis(6_500);
    while Instant::now() < until {
        assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
        during += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    nats.resume().await;

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let expected = before.requests + during;
    let (total, reports) = usage_of(&js, &names, tenant, |u| u.requests >= expected).await;
    assert_eq!(total.requests, expected, "every request counted once");
    // The reports that held the outage's traffic: the one cut when NATS went away, and the one
    // the rest was coalesced into; not one per second.
    let (_, first) = usage_of(&js, &names, tenant, |u| u.requests >= before.requests).await;
    assert!(
        reports - first <= 2,
        "{} reports for {during} requests during the outage",
        reports - first
    );
}
