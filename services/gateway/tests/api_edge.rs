//! The public API edge: other services' gRPC calls on the gateway's API port are
//! authenticated, rate-limited per tenant and forwarded to the owning service.

mod common;

use common::{authed, start};
use tenantry_gateway::domain::events::SubscriptionEvent;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::tenant::v1::{self as tenant_api, tenant_service_client::TenantServiceClient};
use tonic::Code;

#[tokio::test]
async fn calls_through_the_edge_are_authenticated_limited_and_forwarded() {
    let h = start().await;
    let t = h.tenant().await;
    let edge = TenantServiceClient::new(tenantry_testkit::channel(h.gateway.api_addr).await);
    let get = |token: String| {
        let mut edge = edge.clone();
        let id = t.id.to_string();
        async move {
            edge.get_tenant(authed(
                tenant_api::GetTenantRequest {
                    tenant_id: id,
                    min_position: 0,
                },
                &token,
            ))
            .await
        }
    };
    let viewer = h.env.token(Some(t.id), Role::Viewer);
    // Forwarded to the tenant service (once its read model has the tenant).
    let got = tenantry_testkit::eventually(
        "the tenant through the edge",
        std::time::Duration::from_secs(3),
        || async { get(viewer.clone()).await.ok() },
    )
    .await
    .into_inner();
    assert_eq!(got.tenant.unwrap().slug, t.slug);

    // A bad token stops at the edge; the service's own policy still applies behind it.
    assert_eq!(
        get("not-a-token".into()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let other = h.tenant().await;
    let foreign = h.env.token(Some(other.id), Role::Viewer);
    assert_eq!(get(foreign).await.unwrap_err().code(), Code::NotFound);

    // The tenant's plan limits its API calls too.
    h.billing(
        &t,
        SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            requests_per_second: 1,
            burst: 2,
            ..Default::default()
        }),
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(
            get(viewer.clone())
                .await
                .map(|_| Code::Ok)
                .unwrap_or_else(|s| s.code()),
        );
    }
    let ok = codes.iter().filter(|c| **c == Code::Ok).count();
    assert!((2..=3).contains(&ok), "{codes:?}");
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
}
