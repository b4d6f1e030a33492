//! Routing by host and path, each algorithm's distribution, the gateway's own answers, and
//! backends that fail, drain or die.

mod common;

use std::time::Duration;

use common::{Upstream, route, start, text_of};
use tenantry_contracts::tenant::TenantEvent;
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};

async fn body(client: &reqwest::Client, url: &str) -> (u16, String) {
    let r = client.get(url).send().await.expect("the gateway answers");
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn routes_by_host_and_longest_path_prefix_with_forwarding_headers() {
    let h = start().await;
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let t = h.tenant().await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&b, 1)]))
        .await;
    h.route(&t, route("/api", BalanceAlgorithm::RoundRobin, &[(&a, 1)]))
        .await;
    let c = h.client(&t.host);
    let (status, text) = body(&c, &h.url(&t.host, "/api/users")).await;
    assert_eq!(status, 200);
    assert!(text.starts_with("a /api/users "), "{text}");
    assert!(text.contains("xff=127.0.0.1"), "{text}");
    assert!(text.contains(&format!("xfh={}", t.host)), "{text}");
    assert!(
        text.contains(&format!("fwd=for=127.0.0.1;host={};proto=http", t.host)),
        "{text}"
    );
    assert!(!text.contains("rid= "), "a request id is added: {text}");
    // A client that is not a trusted proxy cannot name earlier hops (see attacks.rs); its
    // own request id is kept.
    let text = text_of(
        c.get(h.url(&t.host, "/api/users"))
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-request-id", "client-chosen-1"),
    )
    .await;
    assert!(text.contains("xff=127.0.0.1 "), "{text}");
    assert!(text.contains("rid=client-chosen-1 "), "{text}");
    let (_, text) = body(&c, &h.url(&t.host, "/other")).await;
    assert!(text.starts_with("b /other"), "{text}");

    // Another tenant's host reaches its own routes only; an unknown host is 404.
    let other = h.tenant().await;
    let (status, text) = body(&h.client(&other.host), &h.url(&other.host, "/api")).await;
    assert_eq!(status, 404);
    assert!(text.contains("no_route"), "{text}");
    let (status, text) = body(
        &h.client("nobody.localhost"),
        &h.url("nobody.localhost", "/"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(text.contains("unknown_host"), "{text}");
}

#[tokio::test]
async fn each_algorithm_spreads_as_configured() {
    let h = start().await;
    let t = h.tenant().await;
    let c = h.client(&t.host);
    let ups = [
        Upstream::start("u0").await,
        Upstream::start("u1").await,
        Upstream::start("u2").await,
    ];

    // Round robin: even.
    h.route(
        &t,
        route(
            "/rr",
            BalanceAlgorithm::RoundRobin,
            &[(&ups[0], 1), (&ups[1], 1), (&ups[2], 1)],
        ),
    )
    .await;
    for _ in 0..300 {
        body(&c, &h.url(&t.host, "/rr")).await;
    }
    let hits: Vec<usize> = ups.iter().map(Upstream::hits).collect();
    assert!(hits.iter().all(|n| (95..=105).contains(n)), "{hits:?}");

    // Weighted 1:3: within 5% of 25% / 75%.
    let before: Vec<usize> = ups.iter().map(Upstream::hits).collect();
    h.route(
        &t,
        route(
            "/w",
            BalanceAlgorithm::Weighted,
            &[(&ups[0], 1), (&ups[1], 3)],
        ),
    )
    .await;
    for _ in 0..400 {
        body(&c, &h.url(&t.host, "/w")).await;
    }
    let share0 = (ups[0].hits() - before[0]) as f64 / 400.0;
    let share1 = (ups[1].hits() - before[1]) as f64 / 400.0;
    assert!(
        (share0 - 0.25).abs() <= 0.05 && (share1 - 0.75).abs() <= 0.05,
        "{share0} {share1}"
    );

    // Consistent hash: one key, one backend; many keys, spread over all.
    let mut hashed = route(
        "/h",
        BalanceAlgorithm::HeaderHash,
        &[(&ups[0], 1), (&ups[1], 1), (&ups[2], 1)],
    );
    hashed.hash_header = "x-user".into();
    h.route(&t, hashed).await;
    let mut seen = std::collections::BTreeMap::new();
    for user in 0..300 {
        for _ in 0..2 {
            let text = text_of(
                c.get(h.url(&t.host, "/h"))
                    .header("x-user", format!("user-{user}")),
            )
            .await;
            let name = text.split(' ').next().unwrap().to_owned();
            let first = seen.entry(user).or_insert_with(|| name.clone());
            assert_eq!(*first, name, "user-{user} moved");
        }
    }
    for u in &ups {
        let n = seen.values().filter(|v| **v == u.name).count();
        assert!((60..=140).contains(&n), "{} got {n} of 300 keys", u.name);
    }
}

#[tokio::test]
async fn least_connections_prefers_the_idle_backend() {
    let h = start().await;
    let t = h.tenant().await;
    let slow = Upstream::start_with("slow", Duration::from_millis(300)).await;
    let fast = Upstream::start("fast").await;
    h.route(
        &t,
        route("/", BalanceAlgorithm::LeastConn, &[(&slow, 1), (&fast, 1)]),
    )
    .await;
    let c = h.client(&t.host);
    // Keep the slow one busy, then most requests go to the idle one.
    let busy: Vec<_> = (0..4)
        .map(|_| {
            let (c, url) = (c.clone(), h.url(&t.host, "/"));
            tokio::spawn(async move { c.get(url).send().await.unwrap() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let slow_before = slow.hits();
    for _ in 0..40 {
        body(&c, &h.url(&t.host, "/")).await;
    }
    assert!(
        fast.hits() >= 38,
        "fast {} slow {}",
        fast.hits(),
        slow.hits() - slow_before
    );
    for b in busy {
        b.await.unwrap();
    }
}

#[tokio::test]
async fn suspended_tenants_get_403_and_reactivation_restores_traffic() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let c = h.client(&t.host);
    assert_eq!(body(&c, &h.url(&t.host, "/")).await.0, 200);
    h.tenant_event(
        &t,
        TenantEvent::Suspended(pb::TenantSuspended {
            reason: "unpaid".into(),
        }),
    )
    .await;
    let (status, text) = body(&c, &h.url(&t.host, "/")).await;
    assert_eq!(status, 403);
    assert_eq!(
        text,
        format!(r#"{{"error":"tenant_suspended","tenant_id":"{}"}}"#, t.id)
    );
    h.tenant_event(&t, TenantEvent::Reactivated(pb::TenantReactivated {}))
        .await;
    assert_eq!(body(&c, &h.url(&t.host, "/")).await.0, 200);
}

#[tokio::test]
async fn failures_drains_and_dead_backends() {
    let h = start().await;
    let t = h.tenant().await;
    let c = h.client(&t.host);
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let r = h
        .route(
            &t,
            route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1), (&b, 1)]),
        )
        .await;

    // Drained: no new requests to it.
    h.drain(&t, &r.route_id, a.addr).await;
    let a_before = a.hits();
    for _ in 0..20 {
        assert_eq!(body(&c, &h.url(&t.host, "/")).await.0, 200);
    }
    assert_eq!(a.hits(), a_before);
    // Both drained: 503.
    h.drain(&t, &r.route_id, b.addr).await;
    let (status, text) = body(&c, &h.url(&t.host, "/")).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no_healthy_backend"));

    // A backend that is not there: 502, and after a streak it is ejected.
    let dead_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut with_dead = route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1)]);
    with_dead.route_id = r.route_id.clone();
    with_dead
        .backends
        .push(tenantry_proto::events::v1::Backend {
            address: dead_addr.to_string(),
            weight: 1,
        });
    h.route(&t, with_dead).await;
    let mut bad = 0;
    for _ in 0..40 {
        if body(&c, &h.url(&t.host, "/")).await.0 == 502 {
            bad += 1;
        }
    }
    assert!(
        (1..=3).contains(&bad),
        "{bad} requests failed before the dead backend was ejected"
    );

    // A backend killed mid-way is ejected the same way.
    let before = a.hits();
    a.kill();
    let mut ok = 0;
    for _ in 0..10 {
        if body(&c, &h.url(&t.host, "/")).await.0 == 200 {
            ok += 1;
        }
    }
    assert_eq!(a.hits(), before);
    assert_eq!(ok, 0, "no backend is left alive");
}

#[tokio::test]
async fn active_health_checks_take_a_backend_out_and_bring_it_back() {
    let h = start().await;
    let t = h.tenant().await;
    let c = h.client(&t.host);
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let mut r = route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1), (&b, 1)]);
    r.health_check = Some(tenantry_proto::events::v1::HealthCheck {
        path: "/health".into(),
        interval_ms: 100,
        healthy_threshold: 2,
        unhealthy_threshold: 2,
    });
    h.route(&t, r).await;
    let only_b = || async {
        let before = a.hits();
        for _ in 0..10 {
            body(&c, &h.url(&t.host, "/")).await;
        }
        (a.hits() == before).then_some(())
    };
    a.healthy.store(false, std::sync::atomic::Ordering::Relaxed);
    tenantry_testkit::eventually("a is taken out", Duration::from_secs(3), only_b).await;
    a.healthy.store(true, std::sync::atomic::Ordering::Relaxed);
    tenantry_testkit::eventually("a is back", Duration::from_secs(3), || async {
        let before = a.hits();
        for _ in 0..10 {
            body(&c, &h.url(&t.host, "/")).await;
        }
        (a.hits() > before).then_some(())
    })
    .await;
}
