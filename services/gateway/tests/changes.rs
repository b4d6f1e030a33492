//! Configuration changes under load: draining lets in-flight requests finish, and a route
//! changed again and again while traffic flows drops nothing.

mod common;

use std::time::Duration;

use common::{Upstream, route, start, text_of};
use tenantry_proto::events::v1::BalanceAlgorithm;

#[tokio::test]
async fn draining_a_backend_lets_its_in_flight_requests_finish() {
    let h = start().await;
    let t = h.tenant().await;
    let slow = Upstream::start_with("slow", Duration::from_millis(500)).await;
    let fast = Upstream::start("fast").await;
    let r = h
        .route(
            &t,
            route("/", BalanceAlgorithm::RoundRobin, &[(&slow, 1), (&fast, 1)]),
        )
        .await;
    let c = h.client(&t.host);
    let in_flight: Vec<_> = (0..4)
        .map(|_| {
            let (c, url) = (c.clone(), h.url(&t.host, "/"));
            tokio::spawn(async move {
                let r = c.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(slow.hits() >= 1, "some requests are at the slow backend");
    h.drain(&t, &r.route_id, slow.addr).await;
    let before = slow.hits();
    for _ in 0..10 {
        let text = text_of(c.get(h.url(&t.host, "/"))).await;
        assert!(text.starts_with("fast"), "{text}");
    }
    assert_eq!(
        slow.hits(),
        before,
        "no new request reached the drained backend"
    );
    for call in in_flight {
        let (status, _) = call.await.unwrap();
        assert_eq!(status, 200, "an in-flight request was cut");
    }
}

#[tokio::test]
async fn a_route_changed_under_load_drops_no_request() {
    let h = start().await;
    let t = h.tenant().await;
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let first = h
        .route(&t, route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1)]))
        .await;
    let c = h.client(&t.host);
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (c, url) = (c.clone(), h.url(&t.host, "/"));
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..150 {
                    statuses.push(
                        c.get(&url)
                            .send()
                            .await
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0),
                    );
                }
                statuses
            })
        })
        .collect();
    // Meanwhile: swap the backends, weigh them, change the algorithm.
    let shapes = [
        route("/", BalanceAlgorithm::RoundRobin, &[(&b, 1)]),
        route("/", BalanceAlgorithm::Weighted, &[(&a, 1), (&b, 3)]),
        route("/", BalanceAlgorithm::LeastConn, &[(&a, 1), (&b, 1)]),
        route("/", BalanceAlgorithm::RoundRobin, &[(&a, 1)]),
    ];
    for _ in 0..3 {
        for shape in &shapes {
            let mut shape = shape.clone();
            shape.route_id = first.route_id.clone();
            h.route(&t, shape).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut total = 0;
    for worker in load {
        let statuses = worker.await.unwrap();
        total += statuses.len();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "{:?}",
            statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
        );
    }
    assert_eq!(total, 1200);
    assert!(a.hits() > 0 && b.hits() > 0, "both shapes carried traffic");
}
