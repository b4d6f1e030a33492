//! Pix through Efí end to end: a checkout opens a `cob` charge at Efí's stand-in (mutual
//! TLS), Efí's payment notice reaches billing's webhook listener with Efí's client
//! certificate and moves the subscription to the plan paid for; a client without that
//! certificate is refused during the TLS handshake and changes nothing. Boleto alike: a
//! paid boleto's notification token, posted to billing's `/webhooks/efi/charges`, is read
//! back at Efí and moves the subscription; forged tokens change nothing.

mod common;

use std::time::Duration;

use common::{Harness, start_with, with_token};
use tenantry_proto::billing::v1 as api;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::fakes::efi::{FakeEfi, FakeEfiSettings};
use tenantry_testkit::pki::Pki;

/// The public address boletos are told to notify (Efí would post there; the test posts to
/// billing's own address in its place).
const NOTIFICATION_URL: &str = "https://billing.tenantry.example/webhooks/efi/charges";

/// Efí's stand-in, and billing set up against it (certificates made for the test).
async fn with_efi() -> (Pki, FakeEfi, Harness) {
    let pki = Pki::new();
    let efi_ca = pki.ca("efi-ca");
    let efi_webhook_ca = pki.ca("efi-webhook-ca");
    let our_ca = pki.ca("tenantry-ca");
    let fake = FakeEfi::start(FakeEfiSettings {
        client_id: "Client_Id_billing".into(),
        client_secret: "Client_Secret_billing".into(),
        pix_key: "pix@tenantry.test".into(),
        server: pki.server(&efi_ca, "efi-api"),
        client_ca: efi_ca.cert.clone(),
        webhook_client: pki.client(&efi_webhook_ca, "efi-webhook"),
        webhook_server_ca: our_ca.cert.clone(),
        token_ttl: Duration::from_secs(3600),
    })
    .await;
    let ours = pki.client(&efi_ca, "tenantry-app");
    let listener = pki.server(&our_ca, "tenantry-webhook");
    let (url, efi_ca_cert, webhook_ca) =
        (fake.url(), efi_ca.cert.clone(), efi_webhook_ca.cert.clone());
    let h = start_with(move |c| {
        c.efi.api_base = url.clone();
        c.efi.charges_api_base = url;
        c.efi.client_id = "Client_Id_billing".into();
        c.efi.client_secret = "Client_Secret_billing".into();
        c.efi.certificate = Some(ours.cert);
        c.efi.private_key = Some(ours.key);
        c.efi.server_ca = Some(efi_ca_cert);
        c.efi.pix_key = "pix@tenantry.test".into();
        c.efi.notification_url = NOTIFICATION_URL.into();
        c.efi.webhook_certificate = Some(listener.cert);
        c.efi.webhook_private_key = Some(listener.key);
        c.efi.webhook_client_ca = Some(webhook_ca);
    })
    .await;
    (pki, fake, h)
}

/// How many payments the tenant's subscription recorded.
async fn payments(h: &Harness, tenant: uuid::Uuid) -> usize {
    let store = h.env.event_store().await;
    let address = tenantry_billing::domain::subscription::address(tenant).unwrap();
    store
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
        .count()
}

#[tokio::test]
async fn a_pix_paid_at_efi_moves_the_subscription_and_impostors_are_refused() {
    let (pki, fake, h) = with_efi().await;
    let webhook = h.svc.efi_webhook.expect("the Pix webhook listens");
    fake.set_webhook_url(&format!("https://{webhook}/webhook"))
        .await;

    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    let checkout = h
        .client()
        .checkout(with_token(
            api::CheckoutRequest {
                tenant_id: tenant.to_string(),
                plan: "business".into(),
                payment_method: "pix".into(),
                billing_email: "financeiro@acme.example".into(),
                callback_url: "https://acme.example/pago".into(),
                ..Default::default()
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checkout.provider, "efi");
    assert!(!checkout.pix_copy_paste.is_empty());
    assert!(
        checkout.pix_qr_code.starts_with("data:image/"),
        "{}",
        checkout.pix_qr_code
    );
    let charges = fake.pix_charges().await;
    assert_eq!(charges.len(), 1);

    // An impostor (a certificate Efí's CA did not sign) is refused in the handshake.
    let impostor = pki.self_signed_client("impostor");
    let identity = reqwest::Identity::from_pem(
        &[
            std::fs::read(&impostor.cert).unwrap(),
            std::fs::read(&impostor.key).unwrap(),
        ]
        .concat(),
    );
    let body = format!(
        r#"{{"pix":[{{"endToEndId":"E00000000202612070000forged01","txid":"{}","valor":"499.00","horario":"2026-12-07T10:00:00Z"}}]}}"#,
        checkout.reference
    );
    tenantry_kit::install_crypto();
    let client = reqwest::Client::builder()
        .identity(identity.unwrap())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let sent = client
        .post(format!("https://{webhook}/webhook/pix"))
        .body(body.clone())
        .send()
        .await;
    assert!(sent.is_err(), "the impostor got an answer: {sent:?}");
    // Without any certificate, the same.
    let plain = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert!(
        plain
            .post(format!("https://{webhook}/webhook/pix"))
            .body(body)
            .send()
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.subscription(tenant).await.plan,
        "trial",
        "nothing changed"
    );

    // Efí pays: its notice, with its certificate, moves the subscription to business.
    let (end_to_end, status) = fake.pay(&checkout.reference).await.unwrap();
    assert_eq!(status, 200, "{end_to_end}");
    let sub = h.subscription_where(tenant, |s| s.plan == "business").await;
    assert_eq!(sub.status, pb::SubscriptionStatus::Active as i32);
    // The same notice again (Efí retries) has no second effect.
    let again = format!(
        r#"{{"pix":[{{"endToEndId":"{end_to_end}","txid":"{}","valor":"499.00","horario":"2026-12-07T10:00:00Z"}}]}}"#,
        checkout.reference
    );
    assert_eq!(fake.post_webhook(again.into_bytes()).await.unwrap(), 200);
    assert_eq!(
        payments(&h, tenant).await,
        1,
        "one payment, however often Efí notifies"
    );
}

#[tokio::test]
async fn a_boleto_paid_at_efi_moves_the_subscription_once_and_forged_tokens_change_nothing() {
    let (_pki, fake, h) = with_efi().await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    let checkout = h
        .client()
        .checkout(with_token(
            api::CheckoutRequest {
                tenant_id: tenant.to_string(),
                plan: "business".into(),
                payment_method: "boleto".into(),
                billing_email: "financeiro@acme.example".into(),
                callback_url: "https://acme.example/pago".into(),
                payer_name: "Acme Comércio Ltda".into(),
                payer_tax_id: "12345678000195".into(),
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!checkout.boleto_barcode.is_empty());
    let charge: u64 = checkout.reference.parse().unwrap();
    let endpoint = format!("http://{}/webhooks/efi/charges", h.svc.addr);

    // Before it is paid: a token Efí never issued, and one that is not a token at all, are
    // refused and change nothing; the charge's real token, with nothing paid yet, neither.
    for forged in [
        "7c1f5a0e-0000-4000-8000-000000000000",
        "..%2F..%2Fv1%2Fcharge",
    ] {
        assert_eq!(
            fake.post_notification(&endpoint, forged).await.unwrap(),
            400,
            "{forged}"
        );
    }
    let token = fake.boletos().await[0].token.clone();
    assert_eq!(
        fake.post_notification(&endpoint, &token).await.unwrap(),
        200
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.subscription(tenant).await.plan,
        "trial",
        "nothing paid yet"
    );
    assert_eq!(payments(&h, tenant).await, 0);

    // Paid: the notification the boleto was issued with moves the subscription.
    let (paid_token, url) = fake.pay_boleto(charge).await.unwrap();
    assert_eq!(
        url, NOTIFICATION_URL,
        "the boleto carries billing's public URL"
    );
    assert_eq!(paid_token, token, "one token for the charge's whole life");
    assert_eq!(
        fake.post_notification(&endpoint, &token).await.unwrap(),
        200
    );
    let sub = h.subscription_where(tenant, |s| s.plan == "business").await;
    assert_eq!(sub.status, pb::SubscriptionStatus::Active as i32);
    // Efí posts the same token on every later change (and retries): one payment.
    for _ in 0..3 {
        assert_eq!(
            fake.post_notification(&endpoint, &token).await.unwrap(),
            200
        );
    }
    assert_eq!(payments(&h, tenant).await, 1);
}
