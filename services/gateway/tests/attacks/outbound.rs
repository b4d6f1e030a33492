//! Items 1, 9 and 14: routes as an open proxy into the platform network, one tenant's route
//! state reached through another's route id, unbounded configuration.

use std::time::Duration;

use crate::common::{self, Upstream, authed, route, start, start_full};
use tenantry_gateway::domain::events::RouteEvent;
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};
use tenantry_proto::gateway::v1 as api;
use tonic::Code;

fn to(address: &str) -> api::Route {
    api::Route {
        path_prefix: "/".into(),
        algorithm: BalanceAlgorithm::RoundRobin as i32,
        backends: vec![pb::Backend {
            address: address.into(),
            weight: 1,
        }],
        ..Default::default()
    }
}

/// Asserts `UpsertRoute` to `address` is refused as invalid, naming the backend's field.
async fn assert_refused(h: &common::Harness, tenant: &common::Tenant, address: &str) {
    let e = h.try_route(tenant, to(address)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{address}: {e:?}");
    assert!(
        e.message().starts_with("route.backends[0].address"),
        "{address}: {}",
        e.message()
    );
}

#[tokio::test]
async fn attack_route_to_the_gateways_own_ports_is_refused_even_with_loopback_allowed() {
    // The harness allows loopback (the tests' upstreams live there), as `tenantry dev` does.
    let h = start().await;
    let t = h.tenant().await;
    let before = h.env.event_store().await.last_position().await.unwrap();
    // Its configuration API and metrics, and its own data plane (a request loop).
    for own in [h.gateway.addr, h.gateway.data_addr] {
        assert_refused(&h, &t, &own.to_string()).await;
        assert_refused(&h, &t, &format!("localhost:{}", own.port())).await;
    }
    assert_eq!(
        h.env.event_store().await.last_position().await.unwrap(),
        before,
        "nothing stored"
    );
}

#[tokio::test]
async fn attack_route_to_loopback_metadata_or_private_addresses_is_refused_by_default() {
    let h = start_full(|_| {}, |_| {}, None).await;
    let t = h.tenant().await;
    let up = Upstream::start("internal").await;
    let port = up.addr.port();
    for address in [
        format!("127.0.0.1:{port}"),
        // A name that resolves to loopback.
        format!("localhost:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::1]:{port}"),
        "169.254.169.254:80".to_owned(),
        "10.0.0.1:80".to_owned(),
        "0.0.0.0:80".to_owned(),
    ] {
        assert_refused(&h, &t, &address).await;
    }
    // The index names the offending backend.
    let mut two = to("93.184.216.34:80");
    two.backends.push(pb::Backend {
        address: "169.254.169.254:80".into(),
        weight: 1,
    });
    let e = h.try_route(&t, two).await.unwrap_err();
    assert!(
        e.message().starts_with("route.backends[1].address"),
        "{}",
        e.message()
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn attack_reusing_another_tenants_route_id_is_not_found_and_cannot_mark_its_backends_down() {
    let h = start().await;
    let (a, b) = (h.tenant().await, h.tenant().await);
    let up = Upstream::start("victim").await;
    let ra = h
        .route(&a, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let (client_a, url_a) = (h.client(&a.host), h.url(&a.host, "/"));
    assert_eq!(client_a.get(&url_a).send().await.unwrap().status(), 200);

    // B names A's route id, A's backend and a health check that fails.
    let checked = |mut r: api::Route| {
        r.health_check = Some(pb::HealthCheck {
            path: "/health".into(),
            interval_ms: 100,
            healthy_threshold: 1,
            unhealthy_threshold: 1,
        });
        r
    };
    up.healthy
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let mut reuse = checked(route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]));
    reuse.route_id = ra.route_id.clone();
    let e = h.try_route(&b, reuse.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // Even a route of B's with that id in the log (written before ids were minted by the
    // server) has state of its own: B's backend goes down, A's stays up.
    let config = pb::RouteUpserted {
        route_id: ra.route_id.clone(),
        path_prefix: "/".into(),
        algorithm: BalanceAlgorithm::RoundRobin as i32,
        backends: reuse.backends.clone(),
        health_check: reuse.health_check.clone(),
        ..Default::default()
    };
    h.append(&b, &ra.route_id, &RouteEvent::Upserted(config))
        .await;
    let (client_b, url_b) = (h.client(&b.host), h.url(&b.host, "/"));
    tenantry_testkit::eventually(
        "B's backend fails its check",
        Duration::from_secs(5),
        || {
            let (client_b, url_b) = (client_b.clone(), url_b.clone());
            async move {
                let status = client_b.get(url_b).send().await.ok()?.status();
                (status == 503).then_some(())
            }
        },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(client_a.get(&url_a).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn attack_unbounded_routes_and_backends_are_refused_at_the_default_limits() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    // More backends on one route than the default allows (16).
    let many: Vec<pb::Backend> = (1..=17)
        .map(|i| pb::Backend {
            address: format!("127.0.0.1:{}", 40_000 + i),
            weight: 1,
        })
        .collect();
    let mut wide = route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
    wide.backends = many;
    let e = h.try_route(&t, wide).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("max_backends_per_route"),
        "{}",
        e.message()
    );

    // Routes created at once, past the default limit (100): exactly the limit is created.
    let mut created = tokio::task::JoinSet::new();
    for i in 0..110 {
        let (config, token) = (h.config.clone(), h.member(&t));
        let r = route(&format!("/r{i}"), BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
        created.spawn(async move {
            config
                .clone()
                .upsert_route(authed(api::UpsertRouteRequest { route: Some(r) }, &token))
                .await
        });
    }
    let (mut ok, mut refused) = (0, 0);
    while let Some(outcome) = created.join_next().await {
        match outcome.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(e.message().contains("max_routes"), "{}", e.message());
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (100, 10));
}

/// A name that answers a public address first (when the route is configured), and loopback
/// ever after (when the gateway connects): DNS rebinding.
struct Rebinding {
    calls: std::sync::atomic::AtomicUsize,
}

impl tenantry_kit::egress::Resolver for Rebinding {
    fn lookup<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> futures::future::BoxFuture<'a, std::io::Result<Vec<std::net::SocketAddr>>> {
        let first = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let ip = if first { "93.184.216.34" } else { "127.0.0.1" };
        Box::pin(async move { Ok(vec![std::net::SocketAddr::new(ip.parse().unwrap(), 0)]) })
    }
}

#[tokio::test]
async fn attack_dns_rebinding_to_loopback_is_refused_when_proxying_and_health_checking() {
    let resolver = std::sync::Arc::new(Rebinding {
        calls: Default::default(),
    });
    let h = start_full(|_| {}, |_| {}, Some(resolver.clone())).await;
    let t = h.tenant().await;
    // What the name rebinds to: a loopback service that counts what reaches it.
    let internal = Upstream::start("internal").await;
    let mut r = to(&format!("rebind.attacker.test:{}", internal.addr.port()));
    r.health_check = Some(pb::HealthCheck {
        path: "/probe".into(),
        interval_ms: 100,
        healthy_threshold: 1,
        unhealthy_threshold: 1,
    });
    // Accepted: the name resolves to a public address when configured.
    h.route(&t, r).await;
    let client = h.client(&t.host);
    let status = client
        .get(h.url(&t.host, "/secret"))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status == 502 || status == 503, "{status}");
    // Health checks have resolved the name again (each a connection attempt) by now.
    tenantry_testkit::eventually("health checks ran", Duration::from_secs(5), || {
        let calls = resolver.calls.load(std::sync::atomic::Ordering::SeqCst);
        async move { (calls >= 5).then_some(()) }
    })
    .await;
    assert_eq!(internal.hits(), 0, "nothing reached the internal service");
}

#[tokio::test]
async fn attack_configuration_past_the_plans_bounds_is_refused_naming_the_limit() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    let other = Upstream::start("b").await;
    h.billing(
        &t,
        tenantry_gateway::domain::events::SubscriptionEvent::PlanLimitsChanged(
            pb::PlanLimitsChanged {
                plan: "tiny".into(),
                max_routes: 2,
                max_backends_per_route: 1,
                ..Default::default()
            },
        ),
    )
    .await;
    let two = route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1), (&other, 1)]);
    let e = h.try_route(&t, two).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message().contains("max_backends_per_route"),
        "{}",
        e.message()
    );
    let first = h
        .route(&t, route("/a", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    h.route(&t, route("/b", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let e = h
        .try_route(&t, route("/c", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.message().contains("max_routes"), "{}", e.message());
    // Changing an existing route is not a new one.
    let mut changed = route("/a2", BalanceAlgorithm::RoundRobin, &[(&other, 1)]);
    changed.route_id = first.route_id;
    h.route(&t, changed).await;
}
