//! The configuration API: bad input by field, nothing stored; one tenant cannot touch another's
//! routes or hosts.

mod common;

use common::{Upstream, authed, route, start};
use tenantry_kit::Role;
use tenantry_proto::events::v1::{self as pb, BalanceAlgorithm};
use tenantry_proto::gateway::v1 as api;
use tonic::Code;

#[tokio::test]
async fn bad_routes_are_refused_by_field_and_nothing_is_stored() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    let good = route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
    let before = h.env.event_store().await.last_position().await.unwrap();
    let cases: Vec<(&str, api::Route)> = vec![
        (
            "route.path_prefix",
            api::Route {
                path_prefix: "no-slash".into(),
                ..good.clone()
            },
        ),
        (
            "route.algorithm",
            api::Route {
                algorithm: 0,
                ..good.clone()
            },
        ),
        (
            "route.backends",
            api::Route {
                backends: vec![],
                ..good.clone()
            },
        ),
        (
            "route.backends",
            api::Route {
                backends: vec![pb::Backend {
                    address: "not an address".into(),
                    weight: 1,
                }],
                ..good.clone()
            },
        ),
        (
            "route.hash_header",
            api::Route {
                algorithm: BalanceAlgorithm::HeaderHash as i32,
                ..good.clone()
            },
        ),
        (
            "route.hosts",
            api::Route {
                hosts: vec!["someone-else.example.com".into()],
                ..good.clone()
            },
        ),
        (
            "route.route_id",
            api::Route {
                route_id: "x.>".into(),
                ..good.clone()
            },
        ),
    ];
    for (field, r) in cases {
        let e = h
            .config
            .clone()
            .upsert_route(authed(
                api::UpsertRouteRequest { route: Some(r) },
                &h.member(&t),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    assert_eq!(
        h.env.event_store().await.last_position().await.unwrap(),
        before
    );
}

#[tokio::test]
async fn tenants_cannot_see_or_change_each_others_routes() {
    let h = start().await;
    let (a, b) = (h.tenant().await, h.tenant().await);
    let up = Upstream::start("a").await;
    let mut ra = route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
    ra.hosts = vec![a.host.clone()];
    let ra = h.route(&a, ra).await;
    let member_b = h.member(&b);
    // B cannot claim A's host, remove or drain A's route, or list it.
    let mut steal = route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
    steal.hosts = vec![a.host.clone()];
    let e = h
        .config
        .clone()
        .upsert_route(authed(
            api::UpsertRouteRequest { route: Some(steal) },
            &member_b,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = h
        .config
        .clone()
        .remove_route(authed(
            api::RemoveRouteRequest {
                route_id: ra.route_id.clone(),
            },
            &member_b,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = h
        .config
        .clone()
        .drain_backend(authed(
            api::DrainBackendRequest {
                route_id: ra.route_id.clone(),
                address: up.addr.to_string(),
            },
            &member_b,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let listed = h
        .config
        .clone()
        .list_routes(authed(api::ListRoutesRequest {}, &member_b))
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert!(listed.is_empty());
    let listed = h
        .config
        .clone()
        .list_routes(authed(api::ListRoutesRequest {}, &h.member(&a)))
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert_eq!(listed.len(), 1);
    // A viewer reads but does not write; no token, nothing.
    let viewer = h.env.token(Some(a.id), Role::Viewer);
    let e = h
        .config
        .clone()
        .remove_route(authed(
            api::RemoveRouteRequest {
                route_id: ra.route_id.clone(),
            },
            &viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = h
        .config
        .clone()
        .list_routes(api::ListRoutesRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn the_gateway_names_routes_and_a_retried_creation_makes_one() {
    let h = start().await;
    let t = h.tenant().await;
    let up = Upstream::start("a").await;
    let create = || {
        let mut r = authed(
            api::UpsertRouteRequest {
                route: Some(route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)])),
            },
            &h.member(&t),
        );
        r.metadata_mut()
            .insert("idempotency-key", "create-route-1".parse().unwrap());
        r
    };
    let first = h
        .config
        .clone()
        .upsert_route(create())
        .await
        .unwrap()
        .into_inner();
    let again = h
        .config
        .clone()
        .upsert_route(create())
        .await
        .unwrap()
        .into_inner();
    let id = first.route.unwrap().route_id;
    assert_eq!(again.route.unwrap().route_id, id);
    h.applied(first.position.max(again.position)).await;
    let listed = h
        .config
        .clone()
        .list_routes(authed(api::ListRoutesRequest {}, &h.member(&t)))
        .await
        .unwrap()
        .into_inner()
        .routes;
    assert_eq!(listed.len(), 1);
    // An id the tenant has no route under is not created.
    let mut made_up = route("/", BalanceAlgorithm::RoundRobin, &[(&up, 1)]);
    made_up.route_id = uuid::Uuid::now_v7().to_string();
    let e = h.try_route(&t, made_up).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}
