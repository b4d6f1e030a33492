//! Dunning end to end (issue 19): a failed payment makes the subscription past due; past the
//! grace, billing suspends it and asks the tenant service, with billing's own credential, to
//! suspend the tenant, and the gateway answers the tenant's traffic with 403; once paid, the
//! tenant is reactivated and its traffic flows again. Stripe's webhooks are signed by
//! Stripe's own library; Stripe's API is the local stand-in.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tenantry_billing::{BillingConfig, BillingService};
use tenantry_kit::{Clock, ManualClock, Role};
use tenantry_proto::billing::v1::{self as billing, billing_service_client::BillingServiceClient};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as gw, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_proto::tenant::v1::{self as tenant_api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::fakes::{stripe::FakeStripe, stripe_sign};
use tenantry_testkit::{TestEnv, eventually};

const SECRET: &str = "whsec_dunning_test_0123456789abcdef";

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn webhook(billing: std::net::SocketAddr, id: &str, kind: &str, object: serde_json::Value) {
    let body = serde_json::to_vec(&json!({
        "id": id, "object": "event", "type": kind, "data": { "object": object },
    }))
    .unwrap();
    let signature = stripe_sign::header(&body, SECRET, chrono::Utc::now().timestamp()).await;
    let status = reqwest::Client::new()
        .post(format!("http://{billing}/webhooks/stripe"))
        .header("Stripe-Signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "{kind}");
}

#[tokio::test]
async fn past_due_beyond_the_grace_suspends_the_tenant_until_it_pays() {
    let env = TestEnv::new().await;
    let mut common = env.common();
    common.egress_allow = "127.0.0.0/8".parse().unwrap();
    let (tenant_svc, tenant_channel) = common::start_tenant(&env, &common).await;
    let (gateway, gateway_channel) =
        common::start_gateway(&env, &common, tenantry_gateway::GatewayConfig::ephemeral()).await;
    // Billing's own credential for the tenant service, as a file.
    let dir = std::env::temp_dir().join(format!("{}-billing", env.id));
    std::fs::create_dir_all(&dir).unwrap();
    let credential = dir.join("credential");
    std::fs::write(&credential, env.admin_token()).unwrap();
    let stripe = FakeStripe::start().await;
    let mut config = BillingConfig::ephemeral();
    config.stripe.api_base = stripe.url().into();
    config.stripe.secret_key = stripe.secret_key().into();
    config.stripe.webhook_secret = SECRET.into();
    config.grace_secs = 3 * 24 * 3600;
    config.credential_file = Some(credential);
    config.tenant_endpoint = format!("http://{}", tenant_svc.addr);
    let clock = ManualClock::new(chrono::Utc::now());
    let billing_svc = env
        .start_with(
            &common,
            BillingService {
                config,
                clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
            },
        )
        .await;
    let billing = BillingServiceClient::new(tenantry_testkit::channel(billing_svc.addr).await);

    // A tenant of the tenant service, with a route to an upstream.
    let admin = env.admin_token();
    let slug = format!("dun-{}", &env.id[2..8]);
    let created = TenantServiceClient::new(tenant_channel.clone())
        .create_tenant(with_token(
            tenant_api::CreateTenantRequest {
                name: "Dunning".into(),
                slug: slug.clone(),
                r#type: pb::TenantType::Business as i32,
                settings: None,
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let tenant = created.tenant.unwrap().tenant_id;
    let id: uuid::Uuid = tenant.parse().unwrap();
    let owner = env.token(Some(id), Role::Owner);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback(|| async { "ok" }))
            .await
            .unwrap()
    });
    GatewayConfigServiceClient::new(gateway_channel)
        .upsert_route(with_token(
            gw::UpsertRouteRequest {
                route: Some(gw::Route {
                    path_prefix: "/".into(),
                    algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
                    backends: vec![pb::Backend {
                        address: upstream.to_string(),
                        weight: 1,
                    }],
                    ..Default::default()
                }),
            },
            &env.token(Some(id), Role::Member),
        ))
        .await
        .unwrap();
    let host = format!("{slug}.localhost");
    let client = reqwest::Client::builder()
        .resolve(&host, gateway.data_addr)
        .build()
        .unwrap();
    let status = || {
        let (client, url) = (
            client.clone(),
            format!("http://{host}:{}/", gateway.data_addr.port()),
        );
        async move {
            client
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    eventually("traffic flows", Duration::from_secs(10), || async {
        (status().await == 200).then_some(())
    })
    .await;

    // The tenant pays by card: its Stripe customer.
    eventually("the subscription", Duration::from_secs(10), || {
        let (mut billing, owner, tenant) = (billing.clone(), owner.clone(), tenant.clone());
        async move {
            billing
                .checkout(with_token(
                    billing::CheckoutRequest {
                        tenant_id: tenant,
                        plan: "enterprise".into(),
                        payment_method: "credit_card".into(),
                        billing_email: "finance@dunning.example".into(),
                        callback_url: "https://dunning.example/done".into(),
                        ..Default::default()
                    },
                    &owner,
                ))
                .await
                .ok()
        }
    })
    .await;
    let customer = stripe.customers().await[0].id.clone();

    // A renewal fails: past due. Within the grace nothing else happens.
    webhook(
        billing_svc.addr,
        "evt_failed",
        "invoice.payment_failed",
        json!({ "id": "in_1", "object": "invoice", "customer": customer }),
    )
    .await;
    let sub = |billing: &BillingServiceClient<_>| {
        let request = with_token(
            billing::GetSubscriptionRequest {
                tenant_id: tenant.clone(),
                min_position: 0,
            },
            &owner,
        );
        let mut billing = billing.clone();
        async move {
            billing
                .get_subscription(request)
                .await
                .unwrap()
                .into_inner()
                .subscription
                .unwrap()
        }
    };
    eventually("past due", Duration::from_secs(10), || async {
        (sub(&billing).await.status == pb::SubscriptionStatus::PastDue as i32).then_some(())
    })
    .await;
    clock.advance(chrono::Duration::days(2));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(status().await, 200, "within the grace the tenant is served");

    // Past the grace: suspended, by billing's call to the tenant service; the gateway refuses.
    clock.advance(chrono::Duration::days(2));
    eventually("the tenant suspended", Duration::from_secs(10), || async {
        (status().await == 403).then_some(())
    })
    .await;
    // The tenant service's own read model says so too (it lags the log the gateway follows).
    eventually(
        "the tenant service's record",
        Duration::from_secs(10),
        || {
            let (channel, tenant, admin) = (tenant_channel.clone(), tenant.clone(), admin.clone());
            async move {
                let got = TenantServiceClient::new(channel)
                    .get_tenant(with_token(
                        tenant_api::GetTenantRequest {
                            tenant_id: tenant,
                            ..Default::default()
                        },
                        &admin,
                    ))
                    .await
                    .ok()?
                    .into_inner()
                    .tenant?;
                (got.status == tenant_api::TenantStatus::Suspended as i32).then_some(())
            }
        },
    )
    .await;
    assert_eq!(
        sub(&billing).await.status,
        pb::SubscriptionStatus::Suspended as i32
    );

    // Paid: active again, the tenant reactivated, its traffic served.
    webhook(billing_svc.addr, "evt_paid", "invoice.paid",
        json!({ "id": "in_1", "object": "invoice", "customer": customer, "amount_paid": 299_900, "currency": "brl" })).await;
    eventually(
        "the tenant reactivated",
        Duration::from_secs(10),
        || async { (status().await == 200).then_some(()) },
    )
    .await;
    assert_eq!(
        sub(&billing).await.status,
        pb::SubscriptionStatus::Active as i32
    );
    let _ = std::fs::remove_dir_all(dir);
}
