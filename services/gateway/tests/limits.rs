//! Plan limits and quota states from billing's events, enforced by a running gateway.

mod common;

use common::{Upstream, route, start};
use tenantry_gateway::domain::events::SubscriptionEvent;
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
    let metrics = reqwest::get(format!("http://{}/metrics", h.gateway.api_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

    assert!(
        metrics.lines().any(
            |l| l.contains("tenantry_gateway_request_duration_seconds_bucket")
                && l.contains(&t.id.to_string())
                && l.contains("le=\"+Inf\"")
        ),
        "no latency histogram for the tenant"
    );

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
    h.billing(
        &t,
        SubscriptionEvent::QuotaReset(pb::QuotaReset {
            meter: "requests".into(),
            period_start: None,
        }),
    )
    .await;
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
