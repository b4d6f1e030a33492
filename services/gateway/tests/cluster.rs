//! Rate limits shared by gateway replicas through Redis (the real one, or a test's own
//! `redis-server` where the test stops it), measured with evenly paced load.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Harness, Outcomes, RedisServer, Tenant, Upstream, applied_on, offer, route, start, start_with,
};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_gateway::limit::{Cluster, ClusterConfig};
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};

/// Paced load shares the two cores with the gateways: one measurement at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn plan(rps: u32, burst: u32) -> SubscriptionEvent {
    SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: "pro".into(),
        requests_per_second: rps,
        burst,
        ..Default::default()
    })
}

/// A tenant with one route on `up` and `plan`, applied by `replica` too.
async fn tenant_with(
    h: &Harness,
    up: &Upstream,
    replica: &common::Gateway,
    limits: SubscriptionEvent,
) -> Tenant {
    let t = h.tenant().await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(up, 1)]))
        .await;
    let position = h.billing(&t, limits).await;
    applied_on(replica, position).await;
    t
}

/// Offers `rate_each` requests per second to each gateway for `duration`; the outcomes, and
/// the time from the first request sent to the last.
async fn offer_both(
    gateways: [&common::Gateway; 2],
    host: &str,
    rate_each: u32,
    duration: Duration,
) -> (Arc<Outcomes>, Duration) {
    let outcomes = Arc::new(Outcomes::default());
    let [a, b] = gateways.map(|g| Harness::client_to(g, host, "/"));
    let (x, y) = tokio::join!(
        offer(a.0, a.1, rate_each, duration, outcomes.clone()),
        offer(b.0, b.1, rate_each, duration, outcomes.clone()),
    );
    (outcomes, x.max(y))
}

#[tokio::test]
async fn two_replicas_admit_the_limit_and_not_much_more() {
    let _one = SERIAL.lock().await;
    let h = start().await;
    let b = h.replica(|_| {}).await;
    let up = Upstream::start("a").await;
    // A plan's burst is at least a second's worth.
    let (rps, burst) = (200, 200);

    // Offered at exactly the limit, half through each replica: everything passes.
    let t = tenant_with(&h, &up, &b, plan(rps, burst)).await;
    let seconds = 4;
    let (o, _) = offer_both(
        [&h.gateway, &b],
        &t.host,
        rps / 2,
        Duration::from_secs(seconds),
    )
    .await;
    assert_eq!(
        (o.ok(), o.limited(), o.other()),
        ((rps as u64 * seconds) as usize, 0, 0),
        "at the limit"
    );

    // Offered at twice the limit: admitted between 1.0× and 1.1× of it. The limit over the
    // run is what one exact limiter admits from the first request to the last: a fresh
    // tenant's burst, then rps per second.
    let t = tenant_with(&h, &up, &b, plan(rps, burst)).await;
    let seconds = 5;
    let (o, span) = offer_both([&h.gateway, &b], &t.host, rps, Duration::from_secs(seconds)).await;
    let limit = f64::from(burst) + f64::from(rps) * span.as_secs_f64();
    let ratio = o.ok() as f64 / limit;
    println!(
        "offered {} at 2x over {span:?}: admitted {} = {ratio:.4}x the limit of {limit:.1}, refused {}",
        2 * rps as u64 * seconds,
        o.ok(),
        o.limited()
    );
    assert_eq!(o.other(), 0);
    // The edges of the run (when the first request reaches a gateway, the last sync) are
    // known to within one sync interval (50 ms) of the rate: that much short is still 1.0x.
    let edge = f64::from(rps) * 0.05;
    assert!(
        o.ok() as f64 >= limit - edge && ratio <= 1.1,
        "admitted {ratio:.4}x the limit"
    );
}

#[tokio::test]
async fn a_noisy_neighbour_does_not_hurt_a_tenant_under_its_limit() {
    let _one = SERIAL.lock().await;
    let h = start().await;
    let b = h.replica(|_| {}).await;
    let up = Upstream::start("a").await;
    let noisy = tenant_with(&h, &up, &b, plan(20, 20)).await;
    let quiet = tenant_with(&h, &up, &b, plan(200, 50)).await;
    let duration = Duration::from_secs(4);
    let ((noisy_out, _), (quiet_out, _)) = tokio::join!(
        // Ten times its limit.
        offer_both([&h.gateway, &b], &noisy.host, 100, duration),
        // Three quarters of its limit.
        offer_both([&h.gateway, &b], &quiet.host, 75, duration),
    );
    let quiet_total = quiet_out.ok() + quiet_out.limited() + quiet_out.other();
    let success = quiet_out.ok() as f64 / quiet_total as f64;
    println!(
        "noisy: {} admitted, {} refused; quiet: {success:.4} success of {quiet_total}",
        noisy_out.ok(),
        noisy_out.limited()
    );
    assert!(
        noisy_out.limited() > noisy_out.ok(),
        "the noisy one is limited"
    );
    assert!(success >= 0.999, "quiet tenant success {success}");
}

#[tokio::test]
async fn a_restarted_replica_does_not_let_a_fresh_burst_through() {
    let _one = SERIAL.lock().await;
    let h = start().await;
    let up = Upstream::start("a").await;
    let t = h.tenant().await;
    h.route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
        .await;
    h.billing(&t, plan(1, 10)).await;
    let (c, url) = Harness::client_to(&h.gateway, &t.host, "/");
    let mut ok = 0;
    for _ in 0..20 {
        ok += usize::from(c.get(&url).send().await.unwrap().status() == 200);
    }
    assert!(
        (10..=11).contains(&ok),
        "{ok}: the burst at the first replica"
    );
    // A replica that starts now knows nothing locally; Redis does.
    let b = h.replica(|_| {}).await;
    let (c, url) = Harness::client_to(&b, &t.host, "/");
    let mut ok = 0;
    for _ in 0..10 {
        ok += usize::from(c.get(&url).send().await.unwrap().status() == 200);
    }
    assert!(ok <= 1, "{ok} passed at the fresh replica");
}

#[tokio::test]
async fn an_idle_replica_keeps_sharing_through_a_redis_pause_shorter_than_its_patience() {
    let _one = SERIAL.lock().await;
    let redis = RedisServer::start().await;
    let cluster = Cluster::new(
        ClusterConfig {
            redis_url: redis.url(),
            strict: false,
            replicas: 1,
            sync_interval: Duration::from_millis(50),
            timeout: Duration::from_millis(100),
            namespace: format!("pause-{}:", uuid::Uuid::new_v4().simple()),
        },
        "idle".into(),
    )
    .unwrap();
    assert!(cluster.connect().await, "redis answers");
    let run = tokio::spawn(cluster.clone().run(std::future::pending()));
    // An idle replica only calls Redis for its heartbeat, once a second: a pause of 900 ms
    // makes one of them time out (most likely; twice over, almost surely), and a timed-out
    // heartbeat is not a second of timeouts.
    for _ in 0..2 {
        redis.pause();
        let paused = Instant::now();
        while paused.elapsed() < Duration::from_millis(900) {
            assert!(cluster.is_healthy(), "a 900 ms pause counted as redis gone");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        redis.unpause();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(cluster.is_healthy());
    }
    // Paused for longer than that, it is gone.
    redis.pause();
    let paused = Instant::now();
    while cluster.is_healthy() {
        assert!(
            paused.elapsed() < Duration::from_secs(4),
            "a paused redis never counted as gone"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.unpause();
    run.abort();
}

#[tokio::test]
async fn with_redis_down_each_replica_enforces_its_share_and_recovers_within_a_window() {
    let _one = SERIAL.lock().await;
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let h = start_with(|c| c.redis_url = url.clone()).await;
    let b = h.replica(|c| c.redis_url = url.clone()).await;
    let up = Upstream::start("a").await;
    let (rps, burst) = (100u32, 100u32);
    let t = tenant_with(&h, &up, &b, plan(rps, burst)).await;
    // Both replicas know there are two.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.gateway.cluster.replicas() != 2 || b.cluster.replicas() != 2 {
        assert!(Instant::now() < deadline, "replicas never saw each other");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Twice the limit throughout, while Redis is up, down, and up again.
    let window = Duration::from_secs(2);
    let outcomes = Arc::new(Outcomes::default());
    let load = {
        let [a, bb] = [&h.gateway, &b].map(|g| Harness::client_to(g, &t.host, "/"));
        let o = outcomes.clone();
        tokio::spawn(async move {
            let total = Duration::from_secs(10);
            tokio::join!(
                offer(a.0, a.1, rps, total, o.clone()),
                offer(bb.0, bb.1, rps, total, o),
            );
        })
    };
    let admitted_over = |window: Duration| {
        let o = outcomes.clone();
        async move {
            let before = o.ok();
            tokio::time::sleep(window).await;
            o.ok() - before
        }
    };
    // Past the first burst (at twice the rate it lasts a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let shared = admitted_over(window).await;

    redis.stop();
    let deadline = Instant::now() + Duration::from_secs(2);
    while h.gateway.cluster.is_healthy() || b.cluster.is_healthy() {
        assert!(
            Instant::now() < deadline,
            "replicas did not notice redis is gone"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cut_off = admitted_over(window).await;

    redis.resume().await;
    let back = Instant::now();
    while !(h.gateway.cluster.is_healthy() && b.cluster.is_healthy()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recovery = back.elapsed();
    let recovered = admitted_over(window).await;
    load.await.unwrap();

    let limit = f64::from(rps) * window.as_secs_f64();
    println!(
        "admitted per {window:?} (limit {limit}): shared {shared}, redis down {cut_off}, \
         recovered {recovered}; recovery took {recovery:?}"
    );
    assert_eq!(outcomes.other(), 0);
    for (phase, n) in [
        ("shared", shared),
        ("redis down", cut_off),
        ("recovered", recovered),
    ] {
        let ratio = n as f64 / limit;
        assert!(
            (0.9..=1.15).contains(&ratio),
            "{phase}: {ratio:.3}x the limit"
        );
    }
    assert!(
        recovery <= Duration::from_secs(1),
        "recovery took {recovery:?}"
    );
}

#[tokio::test]
async fn in_strict_mode_a_request_one_limiter_refuses_gives_back_what_the_others_granted() {
    let _one = SERIAL.lock().await;
    let h = start_with(|c| {
        c.rate_limit_mode = tenantry_gateway::config::RateLimitMode::Strict;
    })
    .await;
    let up = Upstream::start("a").await;
    let t = h.tenant().await;
    for prefix in ["/a", "/b"] {
        h.route(&t, route(prefix, BalanceAlgorithm::RoundRobin, &[(&up, 1)]))
            .await;
    }
    // The tenant's bucket holds ten requests; each route's three.
    let limits = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
        plan: "pro".into(),
        requests_per_second: 1,
        burst: 10,
        route_requests_per_second: 1,
        route_burst: 3,
        ..Default::default()
    });
    let position = h.billing(&t, limits).await;
    applied_on(&h.gateway, position).await;

    let send = |path: &'static str, n: usize| {
        let (client, url) = Harness::client_to(&h.gateway, &t.host, path);
        async move {
            let mut ok = 0;
            for _ in 0..n {
                ok += usize::from(client.get(&url).send().await.unwrap().status() == 200);
            }
            ok
        }
    };
    // Redis grants the tenant's cell, then refuses the route's: seven of ten are refused.
    let on_a = send("/a", 10).await;
    assert!((3..=4).contains(&on_a), "{on_a} through /a");
    // Had the refused requests kept the tenant's cells, its bucket would be empty now.
    let on_b = send("/b", 3).await;
    assert_eq!(
        on_b, 3,
        "the tenant's cells the refused requests took were given back"
    );
}

#[tokio::test]
async fn strict_mode_asks_redis_on_every_request_and_is_exact() {
    let _one = SERIAL.lock().await;
    let strict = |c: &mut tenantry_gateway::GatewayConfig| {
        c.rate_limit_mode = tenantry_gateway::config::RateLimitMode::Strict;
    };
    let h = start_with(strict).await;
    let b = h.replica(strict).await;
    let up = Upstream::start("a").await;
    let (rps, burst) = (100u32, 100u32);
    let t = tenant_with(&h, &up, &b, plan(rps, burst)).await;
    let (o, span) = offer_both([&h.gateway, &b], &t.host, rps, Duration::from_secs(3)).await;
    let limit = f64::from(burst) + f64::from(rps) * span.as_secs_f64();
    let ratio = o.ok() as f64 / limit;
    println!(
        "strict, 2x offered over {span:?}: admitted {} = {ratio:.4}x the limit of {limit:.1}",
        o.ok()
    );
    assert_eq!(o.other(), 0);
    // Every admission is decided in Redis: no interval in which replicas cannot see each other.
    assert!(
        o.ok() as f64 >= limit - 2.0 && o.ok() as f64 <= limit + 2.0,
        "admitted {ratio:.4}x the limit"
    );
}
