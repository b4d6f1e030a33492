//! Plan limits and quota states from billing's events, enforced by a running gateway.

mod common;

use common::{Upstream, route, start};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};

fn plan(
    rps: u32,
    burst: u32,
    behaviour: pb::QuotaBehaviour,
    throttle_rps: u32,
) -> SubscriptionEvent {
    SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: "pro".into(),
        requests_per_second: rps,
        burst,
        monthly_requests: 1_000_000,
        monthly_bytes: 0,
        quota_behaviour: behaviour as i32,
        throttle_rps,
        ..Default::default()
    })
}

/// Billing's reset of the requests quota at a new period.
fn reset() -> SubscriptionEvent {
    SubscriptionEvent::QuotaReset(pb::QuotaReset {
        meter: "requests".into(),
        period_start: None,
    })
}

#[tokio::test]
async fn a_plan_limit_appended_to_the_log_is_enforced_with_429_and_headers() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let c = h.client(&t.host);
    // No plan yet: unlimited.
    for _ in 0..50 {
        assert_eq!(
            c.get(h.url(&t.host, "/")).send().await.unwrap().status(),
            200
        );
    }
    h.billing(&t, plan(5, 10, pb::QuotaBehaviour::AlertOnly, 0))
        .await;
    let mut statuses = Vec::new();
    let mut last_429 = None;
    for _ in 0..30 {
        let r = c.get(h.url(&t.host, "/")).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            last_429 = Some(r);
        } else {
            assert_eq!(
                r.headers()["ratelimit-policy"],
                r#""tenant";q=5;w=1;burst=10"#
            );
        }
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    // The burst of 10, plus what 5/s refills while the 30 requests are sent.
    assert!(
        (10..=12).contains(&allowed),
        "{allowed} allowed: {statuses:?}"
    );
    let r = last_429.expect("some were limited");
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(
        r.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(r#""tenant";r=0;t="#)
    );
    assert!(r.text().await.unwrap().contains("rate_limited"));

    // The refusals and the traffic are counted per tenant on the API port's /metrics.
    let metrics = h.metrics().await;
    let limited = format!(
        "tenantry_gateway_rate_limited_total{{tenant_id=\"{}\"}}",
        t.id
    );
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&limited))
        .unwrap_or_else(|| panic!("{limited} missing"));
    assert!(line.ends_with(&format!(" {}", 30 - allowed)), "{line}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tenantry_gateway_requests_total")
                && l.contains(&t.id.to_string())
                && l.contains("status=\"2xx\"")),
        "{metrics}"
    );

    // The latency histogram is published once a second: cumulative buckets, +Inf = count.
    let tenant = t.id.to_string();
    let value = |metrics: &str, name: &str, extra: &str| -> Option<u64> {
        common::metric_value(metrics, name, &[&tenant, extra]).map(|v| v as u64)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let metrics = h.metrics().await;
        let count = value(
            &metrics,
            "tenantry_gateway_request_duration_seconds_count",
            "",
        );
        let inf = value(
            &metrics,
            "tenantry_gateway_request_duration_seconds_bucket",
            "le=\"+Inf\"",
        );
        let fast = value(
            &metrics,
            "tenantry_gateway_request_duration_seconds_bucket",
            "le=\"0.0005\"",
        );
        if count == Some(80) {
            assert_eq!(inf, count, "+Inf holds every request");
            assert!(fast <= inf, "buckets are cumulative");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "histogram count {count:?}, want 80"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // Another tenant is not affected by this one's limit.
    let other = h.tenant().await;
    h.route(
        &other,
        route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]),
    )
    .await;
    let oc = h.client(&other.host);
    for _ in 0..30 {
        assert_eq!(
            oc.get(h.url(&other.host, "/"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn an_exhausted_quota_blocks_or_throttles_as_the_plan_says_until_reset() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    let c = h.client(&t.host);
    let status = |c: reqwest::Client, url: String| async move {
        c.get(url).send().await.unwrap().status().as_u16()
    };

    h.billing(&t, plan(0, 0, pb::QuotaBehaviour::BlockTraffic, 0))
        .await;
    let crossed = |percent| {
        SubscriptionEvent::QuotaThresholdCrossed(pb::QuotaThresholdCrossed {
            meter: "requests".into(),
            percent,
            period_start: None,
            ..Default::default()
        })
    };
    h.billing(&t, crossed(80)).await;
    h.billing(&t, crossed(90)).await;
    assert_eq!(
        status(c.clone(), h.url(&t.host, "/")).await,
        200,
        "alerts only below 100%"
    );
    h.billing(&t, crossed(100)).await;
    let r = c.get(h.url(&t.host, "/")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("quota_exceeded"));
    h.billing(&t, reset()).await;
    assert_eq!(status(c.clone(), h.url(&t.host, "/")).await, 200);

    // Throttle: used up means a low rate, not a wall.
    h.billing(&t, plan(0, 0, pb::QuotaBehaviour::Throttle, 2))
        .await;
    h.billing(&t, crossed(100)).await;
    let mut ok = 0;
    for _ in 0..10 {
        if status(c.clone(), h.url(&t.host, "/")).await == 200 {
            ok += 1;
        }
    }
    assert!((2..=3).contains(&ok), "{ok} passed at a throttle of 2/s");
}

/// Sends `n` GETs to `path` with `key` (as `x-api-key`); the number let through and the
/// `RateLimit` header of the last refusal.
async fn send(
    h: &common::Harness,
    t: &common::Tenant,
    path: &str,
    key: Option<&str>,
    n: usize,
) -> (usize, Option<String>) {
    let c = h.client(&t.host);
    let (mut ok, mut refused) = (0, None);
    for _ in 0..n {
        let mut r = c.get(h.url(&t.host, path));
        if let Some(key) = key {
            r = r.header("x-api-key", key);
        }
        let r = r.send().await.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => refused = Some(r.headers()["ratelimit"].to_str().unwrap().to_owned()),
            s => panic!("status {s}"),
        }
    }
    (ok, refused)
}

#[tokio::test]
async fn route_and_api_key_limits_each_have_their_own_bucket() {
    use tenantry_contracts::auth::ServiceAccountEvent;
    use tenantry_kit::auth::api_keys::digest;
    let h = start().await;
    let t = h.tenant().await;
    let other = h.tenant().await;
    let up = Upstream::start("a").await;
    for tenant in [&t, &other] {
        for prefix in ["/a", "/b", "/c", "/d", "/e"] {
            h.route(
                tenant,
                route(prefix, BalanceAlgorithm::RoundRobin, &[(&up, 1)]),
            )
            .await;
        }
    }
    // Two live keys of the tenant, as the auth service records them.
    let key = |n: u32| format!("tk_k{n}_{}", uuid::Uuid::new_v4().simple());
    let keys = [key(1), key(2)];
    for (i, k) in keys.iter().enumerate() {
        let created = ServiceAccountEvent::ApiKeyCreated(pb::ApiKeyCreated {
            service_account_id: uuid::Uuid::now_v7().to_string(),
            key_id: format!("key{i}"),
            prefix: k[..8].into(),
            key_digest: digest(k),
            name: "ci".into(),
        });
        h.append(&t, &t.id.to_string(), &created).await;
    }
    let limits = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: "pro".into(),
        requests_per_second: 1000,
        burst: 1000,
        route_requests_per_second: 1,
        route_burst: 5,
        api_key_requests_per_second: 1,
        api_key_burst: 3,
        ..Default::default()
    });
    h.billing(&t, limits.clone()).await;
    h.billing(&other, limits).await;

    // Per route: each route lets its own burst through.
    let (ok, refused) = send(&h, &t, "/a", None, 8).await;
    assert!((5..=6).contains(&ok), "{ok} through /a");
    assert!(refused.unwrap().starts_with(r#""route";r=0"#));
    let (ok, _) = send(&h, &t, "/b", None, 8).await;
    assert!((5..=6).contains(&ok), "{ok} through /b: its own bucket");

    // Per key: each key its own burst; the route's cells a key refusal took are given back.
    let (ok, refused) = send(&h, &t, "/c", Some(&keys[0]), 6).await;
    assert!((3..=4).contains(&ok), "{ok} with the first key");
    assert!(refused.unwrap().starts_with(r#""api_key";r=0"#));
    let (ok, _) = send(&h, &t, "/c", None, 2).await;
    assert_eq!(
        ok, 2,
        "the route still has what the refused key requests did not use"
    );
    let (ok, _) = send(&h, &t, "/d", Some(&keys[1]), 6).await;
    assert!((3..=4).contains(&ok), "{ok} with the second key");

    // Keys the gateway does not know share one bucket: making keys up does not help.
    let (ok, _) = send(&h, &t, "/e", Some("tk_made_up_1"), 4).await;
    assert!((3..=4).contains(&ok), "{ok} with an unknown key");
    let (ok, _) = send(&h, &t, "/e", Some("tk_made_up_2"), 2).await;
    assert_eq!(ok, 0, "another unknown key, same bucket");

    // Another tenant: the first tenant's key is unknown there, and its own buckets are full.
    let (ok, _) = send(&h, &other, "/a", Some(&keys[0]), 3).await;
    assert_eq!(ok, 3, "the other tenant's buckets are its own");
}

#[tokio::test]
async fn an_exhausted_quota_with_block_config_refuses_route_changes_not_traffic() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    let r = h
        .route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    h.billing(&t, plan(0, 0, pb::QuotaBehaviour::BlockConfig, 0))
        .await;
    let used_up = SubscriptionEvent::QuotaThresholdCrossed(pb::QuotaThresholdCrossed {
        meter: "requests".into(),
        percent: 100,
        period_start: None,
        ..Default::default()
    });
    h.billing(&t, used_up).await;

    let upsert = |route: tenantry_proto::gateway::v1::Route| {
        let mut config = h.config.clone();
        let token = h.member(&t);
        async move {
            config
                .upsert_route(common::authed(
                    tenantry_proto::gateway::v1::UpsertRouteRequest { route: Some(route) },
                    &token,
                ))
                .await
        }
    };
    let refused = upsert(route("/new", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(refused.message().contains("quota"), "{}", refused.message());
    let c = h.client(&t.host);
    assert_eq!(
        c.get(h.url(&t.host, "/")).send().await.unwrap().status(),
        200,
        "traffic continues"
    );
    // Draining stays possible (an operator's answer to an incident).
    h.drain(&t, &r.route_id, up.addr).await;

    h.billing(&t, reset()).await;
    upsert(route("/new", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await
        .expect("changes are accepted again after the reset");
}
