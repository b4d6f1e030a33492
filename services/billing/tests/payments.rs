//! Payments end to end: checkouts through the providers' local stand-ins (Stripe's API, Efí's
//! over mutual TLS), webhooks signed by Stripe's own library, and what billing makes of them.

mod common;

use std::time::Duration;

use common::{Harness, plan, start_with, with_token};
use serde_json::json;
use tenantry_billing::BillingConfig;
use tenantry_proto::billing::v1 as api;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::eventually;
use tenantry_testkit::fakes::stripe::FakeStripe;
use tenantry_testkit::fakes::stripe_sign;
use uuid::Uuid;

const SECRET: &str = "whsec_test_0123456789abcdefghijklmn";

async fn with_stripe() -> (Harness, FakeStripe) {
    let stripe = FakeStripe::start().await;
    let (url, key) = (stripe.url().to_owned(), stripe.secret_key().to_owned());
    let h = start_with(move |c: &mut BillingConfig| {
        c.stripe.api_base = url;
        c.stripe.secret_key = key;
        c.stripe.webhook_secret = SECRET.into();
    })
    .await;
    (h, stripe)
}

async fn checkout(h: &Harness, tenant: Uuid, plan: &str) -> api::CheckoutResponse {
    h.client()
        .checkout(with_token(
            api::CheckoutRequest {
                tenant_id: tenant.to_string(),
                plan: plan.into(),
                payment_method: "credit_card".into(),
                billing_email: "finance@acme.example".into(),
                callback_url: "https://acme.example/billing/done".into(),
                ..Default::default()
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap()
        .into_inner()
}

fn event(id: &str, kind: &str, object: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "api_version": "2026-11-18.endive",
        "created": chrono::Utc::now().timestamp(),
        "type": kind,
        "data": { "object": object },
    }))
    .unwrap()
}

fn completed(id: &str, tenant: Uuid, session: &str, customer: &str, plan: &str) -> Vec<u8> {
    event(
        id,
        "checkout.session.completed",
        json!({
            "id": session,
            "object": "checkout.session",
            "client_reference_id": tenant.to_string(),
            "customer": customer,
            "mode": "subscription",
            "metadata": { "tenant_id": tenant.to_string(), "plan": plan },
        }),
    )
}

/// Posts `body` to the Stripe webhook with `signature` (none: no header).
async fn post(h: &Harness, body: &[u8], signature: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}/webhooks/stripe", h.svc.addr))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        request = request.header("Stripe-Signature", s);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn signed(body: &[u8]) -> String {
    stripe_sign::header(body, SECRET, chrono::Utc::now().timestamp()).await
}

#[tokio::test]
async fn plan_changes_through_checkouts_reuse_one_stripe_customer() {
    let (h, stripe) = with_stripe().await;
    h.define(plan("pro", 19_900, 100_000, pb::QuotaBehaviour::AlertOnly))
        .await;
    let (tenant, sub) = h.tenant(pb::TenantType::Trial).await;
    assert_eq!(sub.plan, "trial");
    // trial → pro → enterprise → pro, each paid through a checkout.
    for (n, plan) in ["pro", "enterprise", "pro"].into_iter().enumerate() {
        let c = checkout(&h, tenant, plan).await;
        assert_eq!(c.provider, "stripe");
        assert!(c.url.starts_with("http"), "{}", c.url);
        let customer = stripe.customers().await[0].id.clone();
        let body = completed(&format!("evt_{n}"), tenant, &c.reference, &customer, plan);
        assert_eq!(post(&h, &body, Some(&signed(&body).await)).await, 200);
    }
    assert_eq!(
        stripe.customers().await.len(),
        1,
        "one Stripe customer per tenant"
    );
    let sessions = stripe.sessions().await;
    assert_eq!(sessions.len(), 3);
    let customer = &stripe.customers().await[0].id;
    assert!(
        sessions
            .iter()
            .all(|s| s.field("customer") == Some(customer.as_str()))
    );
    // The last change is a downgrade: it waits for the period's end.
    let sub = eventually("the plan changes", Duration::from_secs(10), || async {
        let sub = h.subscription(tenant).await;
        (sub.plan == "enterprise" && sub.scheduled_plan == "pro").then_some(sub)
    })
    .await;
    assert_eq!(sub.customer_id, *customer);
    assert_eq!(sub.provider, "stripe");
}

#[tokio::test]
async fn forged_webhooks_get_400_and_change_nothing() {
    let (h, stripe) = with_stripe().await;
    h.define(plan("pro", 19_900, 100_000, pb::QuotaBehaviour::AlertOnly))
        .await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    let c = checkout(&h, tenant, "pro").await;
    let customer = stripe.customers().await[0].id.clone();
    let body = completed("evt_forged", tenant, &c.reference, &customer, "pro");
    let now = chrono::Utc::now().timestamp();

    let wrong_secret = stripe_sign::header(&body, "whsec_someone_else_entirely_000", now).await;
    assert_eq!(
        post(&h, &body, Some(&wrong_secret)).await,
        400,
        "wrong secret"
    );
    let mut altered = body.clone();
    let at = altered.len() - 5;
    altered[at] = b'X';
    assert_eq!(
        post(&h, &altered, Some(&signed(&body).await)).await,
        400,
        "altered body"
    );
    let stale = stripe_sign::header(&body, SECRET, now - 301).await;
    assert_eq!(post(&h, &body, Some(&stale)).await, 400, "stale timestamp");
    assert_eq!(post(&h, &body, None).await, 400, "missing header");
    assert_eq!(
        post(&h, &body, Some("t=1,v1=zz")).await,
        400,
        "malformed header"
    );

    // Nothing happened: still on trial, and the event id was not spent (the genuine
    // delivery that follows is acted on).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.subscription(tenant).await.plan, "trial");
    assert_eq!(post(&h, &body, Some(&signed(&body).await)).await, 200);
    eventually(
        "the genuine delivery's effect",
        Duration::from_secs(10),
        || async { (h.subscription(tenant).await.plan == "pro").then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_thousand_deliveries_of_one_event_have_one_effect() {
    let (h, stripe) = with_stripe().await;
    h.define(plan("pro", 19_900, 100_000, pb::QuotaBehaviour::AlertOnly))
        .await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    checkout(&h, tenant, "pro").await;
    let customer = stripe.customers().await[0].id.clone();
    let body = event(
        "evt_paid_once",
        "invoice.paid",
        json!({ "id": "in_1", "object": "invoice", "customer": customer,
                "amount_paid": 19_900, "currency": "brl" }),
    );
    let signature = signed(&body).await;
    let mut statuses = Vec::new();
    for wave in 0..20 {
        let posts = (0..50).map(|_| post(&h, &body, Some(&signature)));
        statuses.extend(futures::future::join_all(posts).await);
        let _ = wave;
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let store = h.env.event_store().await;
    let address = tenantry_billing::domain::subscription::address(tenant).unwrap();
    let payments = store
        .read_aggregate(&address, 0)
        .await
        .unwrap()
        .iter()
        .flat_map(|m| {
            m.events::<tenantry_contracts::billing::SubscriptionEvent>()
                .unwrap()
        })
        .filter(|e| {
            matches!(
                e.event,
                tenantry_contracts::billing::SubscriptionEvent::PaymentSucceeded(_)
            )
        })
        .count();
    assert_eq!(payments, 1, "1,000 deliveries, one payment recorded");
}

#[tokio::test]
async fn bad_checkouts_name_the_field_and_open_nothing() {
    let (h, stripe) = with_stripe().await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    let base = api::CheckoutRequest {
        tenant_id: tenant.to_string(),
        plan: "business".into(),
        payment_method: "credit_card".into(),
        billing_email: "finance@acme.example".into(),
        callback_url: "https://acme.example/done".into(),
        ..Default::default()
    };
    let cases: Vec<(&str, api::CheckoutRequest)> = vec![
        (
            "plan",
            api::CheckoutRequest {
                plan: "gold".into(),
                ..base.clone()
            },
        ),
        (
            "plan",
            api::CheckoutRequest {
                plan: "free".into(),
                ..base.clone()
            },
        ),
        (
            "payment_method",
            api::CheckoutRequest {
                payment_method: "cash".into(),
                ..base.clone()
            },
        ),
        (
            "billing_email",
            api::CheckoutRequest {
                billing_email: "a@b\r\nBcc: x@y.z".into(),
                ..base.clone()
            },
        ),
        (
            "callback_url",
            api::CheckoutRequest {
                callback_url: "javascript:alert(1)".into(),
                ..base.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let err = h
            .client()
            .checkout(with_token(request, &h.owner(tenant)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}: {err:?}");
        assert!(
            err.message().starts_with(field),
            "{field}: {}",
            err.message()
        );
    }
    // Pix is Efí's, which this deployment does not configure.
    let err = h
        .client()
        .checkout(with_token(
            api::CheckoutRequest {
                payment_method: "pix".into(),
                ..base.clone()
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(stripe.customers().await.is_empty());
    assert!(stripe.sessions().await.is_empty());
}
