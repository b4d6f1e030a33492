//! The public API edge: other services' gRPC calls on the gateway's API port are
//! authenticated, rate-limited per tenant and forwarded to the owning service.

mod common;

use std::time::Duration;

use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::tenant::v1::{self as tenant_api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::TestEnv;
use tonic::Code;
use uuid::Uuid;

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

struct Tenant {
    id: Uuid,
    slug: String,
}

/// A tenant made through the tenant service (reached directly, not through the edge).
async fn create_tenant(
    env: &TestEnv,
    tenants: &TenantServiceClient<tonic::transport::Channel>,
) -> Tenant {
    let slug = format!("t{}", &Uuid::new_v4().simple().to_string()[..10]);
    let created = tenants
        .clone()
        .create_tenant(authed(
            tenant_api::CreateTenantRequest {
                name: slug.clone(),
                slug: slug.clone(),
                r#type: pb::TenantType::Business as i32,
                settings: None,
            },
            &env.admin_token(),
        ))
        .await
        .unwrap()
        .into_inner();
    Tenant {
        id: created.tenant.unwrap().tenant_id.parse().unwrap(),
        slug,
    }
}

/// Appends billing's `subscription` event for `tenant` (as billing does) and waits until the
/// gateway has it.
async fn billing(
    env: &TestEnv,
    gateway: &tenantry_kit::service::Running<tenantry_gateway::Handle>,
    tenant: &Tenant,
    event: SubscriptionEvent,
) {
    let store = env.event_store().await;
    let tenant = tenant.id.to_string();
    let position = tenantry_testkit::append(&store, &tenant, &tenant, event)
        .await
        .unwrap();
    let mut applied = gateway.applied.clone();
    tokio::time::timeout(
        Duration::from_secs(5),
        applied.wait_for(|p| p.is_some_and(|p| p >= position)),
    )
    .await
    .unwrap()
    .unwrap();
}

#[tokio::test]
async fn calls_through_the_edge_are_authenticated_limited_and_forwarded() {
    let env = TestEnv::new().await;
    let (tenant_svc, tenant_channel) = common::start_tenant(&env, &env.common()).await;
    let tenants = TenantServiceClient::new(tenant_channel);
    let mut config = tenantry_gateway::GatewayConfig::ephemeral();
    // The public API edge forwards the tenant service's calls to it.
    config.services = format!("tenant={}", tenant_svc.addr);
    let (gateway, _) = common::start_gateway(&env, &env.common(), config).await;
    let t = create_tenant(&env, &tenants).await;
    let edge = TenantServiceClient::new(tenantry_testkit::channel(gateway.addr).await);
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
    let viewer = env.token(Some(t.id), Role::Viewer);
    // Forwarded to the tenant service (once its read model has the tenant).
    let got = tenantry_testkit::eventually(
        "the tenant through the edge",
        Duration::from_secs(3),
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
    let other = create_tenant(&env, &tenants).await;
    let foreign = env.token(Some(other.id), Role::Viewer);
    assert_eq!(get(foreign).await.unwrap_err().code(), Code::NotFound);

    // The tenant's plan limits its API calls too.
    billing(
        &env,
        &gateway,
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

/// The seed's HTTP shapes go through the edge too: `/api/tenants/{id}/billing/...` reaches
/// billing, authenticated at the edge, with JSON errors.
#[tokio::test]
async fn billing_http_shapes_are_forwarded_through_the_edge() {
    let env = TestEnv::new().await;
    let (tenant_svc, tenant_channel) = common::start_tenant(&env, &env.common()).await;
    let (billing_svc, _) = common::start_billing(&env, &env.common()).await;
    let mut config = tenantry_gateway::GatewayConfig::ephemeral();
    config.services = format!("tenant={},billing={}", tenant_svc.addr, billing_svc.addr);
    let (gateway, _) = common::start_gateway(&env, &env.common(), config).await;
    let t = create_tenant(&env, &TenantServiceClient::new(tenant_channel)).await;
    let http = reqwest::Client::new();
    let url = format!(
        "http://{}/api/tenants/{}/billing/usage/report?format=json",
        gateway.addr, t.id
    );
    let viewer = env.token(Some(t.id), Role::Viewer);
    // Once billing has opened the tenant's subscription (from the tenant's creation).
    let report: serde_json::Value = tenantry_testkit::eventually(
        "the report through the edge",
        Duration::from_secs(10),
        || async {
            let r = http.get(&url).bearer_auth(&viewer).send().await.ok()?;
            (r.status() == 200).then_some(())?;
            r.json().await.ok()
        },
    )
    .await;
    assert_eq!(report["tenant_id"], t.id.to_string());
    let r = http
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
    let other = env.token(Some(Uuid::now_v7()), Role::Viewer);
    assert_eq!(
        http.get(&url)
            .bearer_auth(other)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// Sync's seed shapes (`/api/v2/tenant-integrations/...`) go through the edge to sync:
/// authenticated at the edge, tenant-checked and validated by sync, JSON errors.
#[tokio::test]
async fn sync_http_shapes_are_forwarded_through_the_edge() {
    let env = TestEnv::new().await;
    let (sync_svc, _) = common::start_sync(&env, &env.common()).await;
    let mut config = tenantry_gateway::GatewayConfig::ephemeral();
    config.services = format!("sync={}", sync_svc.addr);
    let (gateway, _) = common::start_gateway(&env, &env.common(), config).await;
    let tenant = Uuid::now_v7();
    let base = format!("http://{}/api/v2/tenant-integrations", gateway.addr);
    let http = reqwest::Client::new();
    let member = env.token(Some(tenant), Role::Member);
    let body = serde_json::json!({
        "tenant_id": tenant.to_string(),
        "integration_type": "vtex",
        "account_name": "chelseaio",
        "environment": "vtexcommercestable",
        "app_key": "vtexappkey-chelseaio-X",
        "app_token": "edge-token",
        "auto_sync": true,
        "sync_frequency": "daily",
    });
    let r = http
        .post(&base)
        .bearer_auth(&member)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["integration_type"], "vtex");

    let status_url = format!("{base}/{tenant}/sync-status");
    let viewer = env.token(Some(tenant), Role::Viewer);
    let status: serde_json::Value = tenantry_testkit::eventually(
        "the status through the edge",
        Duration::from_secs(10),
        || async {
            let r = http
                .get(&status_url)
                .bearer_auth(&viewer)
                .send()
                .await
                .ok()?;
            (r.status() == 200).then_some(())?;
            let body: serde_json::Value = r.json().await.ok()?;
            (body["integrations"].as_array()?.len() == 1).then_some(body)
        },
    )
    .await;
    assert_eq!(status["integrations"][0]["id"], created["id"]);
    assert_eq!(status["integrations"][0]["type"], "vtex");
    assert_eq!(status["overall_status"], "healthy");

    // Refused at the edge: no valid token.
    let r = http
        .get(&status_url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["error"], "unauthenticated");
    // Another tenant: not found, by sync.
    let other = env.token(Some(Uuid::now_v7()), Role::Owner);
    let r = http
        .post(format!("{base}/{tenant}/sync"))
        .bearer_auth(&other)
        .json(&serde_json::json!({"sync_type": "full"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Bad input: the body's field named.
    let mut bad = body.clone();
    bad["sync_frequency"] = serde_json::json!("often");
    let r = http
        .post(&base)
        .bearer_auth(&member)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("sync_frequency: "),
        "{answer}"
    );
}
