//! The seed's HTTP shapes on billing's port: checkout, invoices and the usage report, with
//! the same authentication, tenant isolation and validation as the gRPC API.

mod common;

use std::time::Duration;

use common::{start_with, with_token};
use tenantry_billing::domain::period::{add_months, month_start};
use tenantry_kit::Clock as _;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::eventually;
use tenantry_testkit::fakes::stripe::FakeStripe;

#[tokio::test]
async fn checkout_invoices_and_usage_reports_over_http() {
    let stripe = FakeStripe::start().await;
    let (url, key) = (stripe.url().to_owned(), stripe.secret_key().to_owned());
    let h = start_with(move |c| {
        c.stripe.api_base = url;
        c.stripe.secret_key = key;
    })
    .await;
    let (a, _) = h.tenant(pb::TenantType::Business).await;
    let (b, _) = h.tenant(pb::TenantType::Business).await;
    let base = format!("http://{}/api/tenants/{a}/billing", h.svc.addr);
    let http = reqwest::Client::new();
    let owner = h.owner(a);

    // Checkout, the seed's curl call.
    let r = http
        .post(format!("{base}/checkout"))
        .bearer_auth(&owner)
        .json(&serde_json::json!({
            "plan": "enterprise",
            "payment_method": "credit_card",
            "billing_email": "financeiro@tenant1.com",
            "callback_url": "https://tenant1.com/payment/callback",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["provider"], "stripe");
    assert!(body["url"].as_str().unwrap().starts_with("http"));
    assert_eq!(stripe.customers().await.len(), 1);

    // Bad input: 400 naming the field; no token: 401; another tenant's: 404.
    let r = http
        .post(format!("{base}/checkout"))
        .bearer_auth(&owner)
        .json(&serde_json::json!({
            "plan": "enterprise", "payment_method": "cheque",
            "billing_email": "a@b.example", "callback_url": "https://b.example/",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("payment_method"),
        "{body}"
    );
    let r = http.get(format!("{base}/invoices")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/invoices"))
        .bearer_auth(h.owner(b))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Usage: the report as CSV and JSON.
    h.report(a, "gw-a", 1, 42).await;
    eventually("the usage", Duration::from_secs(10), || async {
        (h.used(a, "requests").await == 42).then_some(())
    })
    .await;
    let r = http
        .get(format!("{base}/usage/report?format=csv&period=current"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("tenant_id,hour,meter,quantity"), "{csv}");
    assert!(csv.contains(",requests,42"), "{csv}");
    let r = http
        .get(format!("{base}/usage/report?format=json"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["totals"]["requests"], 42, "{json}");
    let r = http
        .get(format!(
            "{base}/usage/report?format=csv&period=2026-05-01..2026-04-01"
        ))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .get(format!(
            "http://{}/api/tenants/{b}/billing/usage/report?format=csv",
            h.svc.addr
        ))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "A's token on B's report");

    // The month ends: the period is closed and invoiced, listed over HTTP.
    let next = add_months(month_start(h.clock.now()), 1);
    h.clock
        .advance(next - h.clock.now() + chrono::Duration::seconds(1));
    let invoices = eventually("the invoice", Duration::from_secs(10), || async {
        let body: serde_json::Value = http
            .get(format!("{base}/invoices"))
            .bearer_auth(&owner)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let invoices = body["invoices"].as_array()?.clone();
        (!invoices.is_empty()).then_some(invoices)
    })
    .await;
    assert_eq!(invoices[0]["number"], 1);
    assert_eq!(invoices[0]["currency"], "BRL");
    // Finalized at once in tests (finalize-after 0).
    eventually("the invoice finalized", Duration::from_secs(10), || async {
        let got = h
            .client()
            .get_invoice(with_token(
                tenantry_proto::billing::v1::GetInvoiceRequest {
                    tenant_id: a.to_string(),
                    number: 1,
                    min_position: 0,
                },
                &owner,
            ))
            .await
            .ok()?
            .into_inner()
            .invoice?;
        (got.status == pb::InvoiceStatus::Open as i32).then_some(())
    })
    .await;
}
