//! Items 7 and 8: made-up paths as metric labels, a removed route's series, and every tenant's
//! traffic on the public API port's `/metrics`.

use tenantry_proto::gateway::v1 as api;
use uuid::Uuid;

use super::common::{Upstream, authed, route, start};
use super::support::RR;

#[tokio::test]
async fn attack_made_up_paths_do_not_grow_the_metric_labels() {
    let h = start().await;
    let marker = format!("attack-{}", Uuid::new_v4().simple());
    let client = reqwest::Client::new();
    for i in 0..20 {
        let _ = client
            .post(format!("http://{}/{marker}-{i}", h.gateway.addr))
            .header("content-type", "application/grpc")
            .send()
            .await
            .unwrap();
    }
    let metrics = h.metrics().await;
    assert!(
        !metrics.contains(&marker),
        "a made-up path became a label:\n{metrics}"
    );
    assert!(
        metrics.contains("tenantry_grpc_requests_total{rpc=\"unknown\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn attack_a_removed_routes_metric_series_are_dropped() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    let r = h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let c = h.client(&t.host);
    assert_eq!(
        c.get(h.url(&t.host, "/")).send().await.unwrap().status(),
        200
    );
    let series = format!("route=\"{}\"", r.route_id);
    assert!(h.metrics().await.contains(&series));
    let removed = h
        .config
        .clone()
        .remove_route(authed(
            api::RemoveRouteRequest {
                route_id: r.route_id.clone(),
            },
            &h.member(&t),
        ))
        .await
        .unwrap()
        .into_inner();
    h.applied(removed.position).await;
    let metrics = h.metrics().await;
    assert!(
        !metrics.contains(&series),
        "a removed route's series stay:\n{metrics}"
    );
}

#[tokio::test]
async fn attack_tenants_traffic_metrics_are_not_served_on_the_public_api_port() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    h.route(&t, route("/", RR, &[(&up, 1)])).await;
    let c = h.client(&t.host);
    assert_eq!(
        c.get(h.url(&t.host, "/")).send().await.unwrap().status(),
        200
    );
    let tenant = t.id.to_string();

    let public = reqwest::get(format!("http://{}/metrics", h.gateway.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !public.contains("tenantry_gateway") && !public.contains(&tenant),
        "the public API port serves metrics:\n{public}"
    );
    // Nor the data plane: `/metrics` there is the tenant's own path.
    let on_data_plane = c.get(h.url(&t.host, "/metrics")).send().await.unwrap();
    assert!(
        !on_data_plane
            .text()
            .await
            .unwrap()
            .contains("tenantry_gateway")
    );
    // The operator port has them.
    assert!(h.metrics().await.contains(&tenant));
}
