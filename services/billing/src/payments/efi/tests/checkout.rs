//! Tokens, Pix charges and boletos.

use std::sync::Arc;

use chrono::Duration;
use tenantry_kit::SystemClock;
use tenantry_testkit::fakes::efi::Api;

use super::{CLIENT_ID, PIX_KEY, World, request};
use crate::payments::efi::{EfiClient, SetupError};
use crate::payments::{Payer, PaymentError, PaymentMethod, PaymentProvider};

#[tokio::test]
async fn the_token_is_asked_for_over_mutual_tls_and_a_client_without_a_certificate_is_refused() {
    let world = World::new().await;
    world
        .client()
        .checkout(&request(PaymentMethod::Pix, 4990))
        .await
        .unwrap();
    assert_eq!(world.fake.token_requests(Api::Pix), 1);
    assert_eq!(world.fake.refused_handshakes(), 0);

    // The same token request with the right credentials, but no certificate.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates({
        let mut roots = rustls::RootCertStore::empty();
        for cert in crate::payments::efi::tls::certificates(&world.efi_ca.cert).unwrap() {
            roots.add(cert).unwrap();
        }
        roots
    })
    .with_no_client_auth();
    let anonymous = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap();
    let refused = anonymous
        .post(format!("{}/oauth/token", world.fake.url()))
        .basic_auth(CLIENT_ID, Some(super::CLIENT_SECRET))
        .json(&serde_json::json!({ "grant_type": "client_credentials" }))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(world.fake.refused_handshakes(), 1);
    assert_eq!(
        world.fake.token_requests(Api::Pix),
        1,
        "nothing reached HTTP"
    );

    // Our client cannot even be built without its certificate.
    let mut config = world.config.clone();
    config.certificate = None;
    let missing = EfiClient::from_config(&config, Arc::new(SystemClock)).err();
    assert!(
        matches!(missing, Some(SetupError::Missing("efi-certificate"))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn wrong_credentials_fail_without_echoing_efi() {
    let mut world = World::new().await;
    world.config.client_secret = "wrong".into();
    let err = world
        .client()
        .checkout(&request(PaymentMethod::Pix, 4990))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("oauth token") && text.contains("401"),
        "{text}"
    );
    assert!(
        !text.contains("invalid_client") && !text.contains("credentials"),
        "{text}"
    );
}

#[tokio::test]
async fn a_pix_checkout_opens_a_cob_for_the_amount_and_returns_its_qr_code() {
    let world = World::new().await;
    let request = request(PaymentMethod::Pix, 4990);
    let checkout = world.client().checkout(&request).await.unwrap();

    let charges = world.fake.pix_charges().await;
    assert_eq!(charges.len(), 1);
    let cob = &charges[0];
    assert_eq!(checkout.reference, cob.txid);
    assert!(
        (26..=35).contains(&cob.txid.len()) && cob.txid.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{}",
        cob.txid
    );
    assert_eq!(cob.request["valor"]["original"], "49.90");
    assert_eq!(cob.request["chave"], PIX_KEY);
    assert_eq!(cob.request["calendario"]["expiracao"], 3600);
    assert_eq!(cob.request["solicitacaoPagador"], "Tenantry Pro (month)");
    assert_eq!(cob.request["devedor"]["cpf"], "94271564656");
    assert_eq!(cob.request["devedor"]["nome"], "Maria Souza");

    assert!(
        checkout.pix_copy_paste.starts_with("000201"),
        "{}",
        checkout.pix_copy_paste
    );
    assert!(checkout.pix_copy_paste.contains(&cob.txid));
    assert!(checkout.pix_qr_code.starts_with("data:image/png;base64,"));
    assert_eq!(
        checkout.expires_at,
        Some(cob.created + Duration::seconds(3600))
    );
    assert!(checkout.url.is_empty() && checkout.boleto_barcode.is_empty());
}

#[tokio::test]
async fn amounts_are_written_with_two_decimals() {
    let world = World::new().await;
    let client = world.client();
    for (minor, written) in [
        (1, "0.01"),
        (5, "0.05"),
        (100_000, "1000.00"),
        (123_456, "1234.56"),
    ] {
        let checkout = client
            .checkout(&request(PaymentMethod::Pix, minor))
            .await
            .unwrap();
        let cob = world
            .fake
            .pix_charges()
            .await
            .into_iter()
            .find(|c| c.txid == checkout.reference)
            .unwrap();
        assert_eq!(cob.request["valor"]["original"], written);
    }
}

#[tokio::test]
async fn a_retried_pix_checkout_gets_the_same_charge_until_its_window_ends() {
    let world = World::new().await;
    let (client, clock) = world.manual_client();
    let request = request(PaymentMethod::Pix, 4990);
    let first = client.checkout(&request).await.unwrap();
    let again = client.checkout(&request).await.unwrap();
    assert_eq!(
        again, first,
        "Efí answered 409 and the charge was read back"
    );
    assert_eq!(world.fake.pix_charges().await.len(), 1);

    // Another plan is another charge.
    let mut other = request.clone();
    other.amount_minor = 9990;
    assert_ne!(
        client.checkout(&other).await.unwrap().reference,
        first.reference
    );

    // Once the window has passed, the first charge would expire soon: a new one.
    clock.advance(Duration::seconds(3600));
    let later = client.checkout(&request).await.unwrap();
    assert_ne!(later.reference, first.reference);
    assert_eq!(world.fake.pix_charges().await.len(), 3);
}

#[tokio::test]
async fn a_paid_charge_is_not_handed_out_again() {
    let world = World::new().await;
    let (client, _clock) = world.manual_client();
    let (_addr, _deliveries) = world.listen(None).await;
    let request = request(PaymentMethod::Pix, 4990);
    let first = client.checkout(&request).await.unwrap();
    world.fake.pay(&first.reference).await.unwrap();
    let err = client.checkout(&request).await.unwrap_err();
    assert!(err.to_string().contains("no longer open"), "{err}");
}

#[tokio::test]
async fn a_boleto_checkout_issues_a_one_step_charge_in_cents() {
    let world = World::new().await;
    let (client, clock) = world.manual_client();
    let request = request(PaymentMethod::Boleto, 4990);
    let checkout = client.checkout(&request).await.unwrap();

    let boletos = world.fake.boletos().await;
    assert_eq!(boletos.len(), 1);
    let boleto = &boletos[0];
    assert_eq!(checkout.reference, boleto.charge_id.to_string());
    let sent = &boleto.request;
    assert_eq!(sent["items"][0]["value"], 4990, "an integer, in cents");
    assert_eq!(sent["items"][0]["amount"], 1);
    assert_eq!(sent["items"][0]["name"], "Tenantry Pro (month)");
    assert_eq!(sent["metadata"]["custom_id"], request.tenant_id.to_string());
    let customer = &sent["payment"]["banking_billet"]["customer"];
    assert_eq!(customer["name"], "Maria Souza");
    assert_eq!(customer["cpf"], "94271564656");
    assert_eq!(customer["email"], "billing@acme.test");
    let due = crate::payments::efi::boleto::due_date(tenantry_kit::Clock::now(&clock), 3);
    assert_eq!(
        sent["payment"]["banking_billet"]["expire_at"],
        due.format("%Y-%m-%d").to_string()
    );

    assert!(checkout.url.ends_with("/pdf"), "{}", checkout.url);
    assert!(!checkout.boleto_barcode.is_empty());
    assert!(checkout.pix_qr_code.is_empty() && checkout.pix_copy_paste.is_empty());
    // The end of the due date in Brasília (03:00 UTC the next day).
    let expires = checkout.expires_at.unwrap();
    assert_eq!(expires.date_naive(), due + Duration::days(1));
    assert_eq!(expires.format("%H:%M").to_string(), "03:00");
}

#[tokio::test]
async fn a_company_pays_a_boleto_by_its_cnpj_and_nobody_pays_one_without_a_tax_id() {
    let world = World::new().await;
    let client = world.client();
    let mut company = request(PaymentMethod::Boleto, 29_900);
    company.payer = Some(Payer {
        name: "Acme Serviços Ltda".into(),
        tax_id: "12345678000195".into(),
    });
    client.checkout(&company).await.unwrap();
    let customer =
        world.fake.boletos().await[0].request["payment"]["banking_billet"]["customer"].clone();
    assert_eq!(customer["juridical_person"]["cnpj"], "12345678000195");
    assert_eq!(
        customer["juridical_person"]["corporate_name"],
        "Acme Serviços Ltda"
    );
    assert!(customer.get("cpf").is_none() && customer.get("name").is_none());

    for payer in [
        None,
        Some(Payer {
            name: "Maria".into(),
            tax_id: "123".into(),
        }),
        Some(Payer {
            name: "Maria".into(),
            tax_id: "942.715.646-56".into(),
        }),
    ] {
        let mut anonymous = request(PaymentMethod::Boleto, 4990);
        anonymous.payer = payer;
        let err = client.checkout(&anonymous).await.unwrap_err();
        assert!(
            matches!(
                err,
                PaymentError::Provider {
                    provider: "efi",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert_eq!(
        world.fake.boletos().await.len(),
        1,
        "refused before any call"
    );
}

#[tokio::test]
async fn tokens_are_cached_across_calls_per_api_and_asked_again_once_revoked() {
    let world = World::new().await;
    let client = world.client();
    for amount in [1000, 2000, 3000] {
        client
            .checkout(&request(PaymentMethod::Pix, amount))
            .await
            .unwrap();
    }
    for amount in [1000, 2000] {
        client
            .checkout(&request(PaymentMethod::Boleto, amount))
            .await
            .unwrap();
    }
    assert_eq!(world.fake.token_requests(Api::Pix), 1);
    assert_eq!(world.fake.token_requests(Api::Charges), 1);

    // A token Efí no longer honours: the call is answered 401, a new token asked, the call
    // made again.
    world.fake.revoke_tokens().await;
    client
        .checkout(&request(PaymentMethod::Pix, 4000))
        .await
        .unwrap();
    assert_eq!(world.fake.token_requests(Api::Pix), 2);
    assert_eq!(world.fake.pix_charges().await.len(), 4);
}

#[tokio::test]
async fn customers_are_derived_from_the_tenant_and_other_currencies_and_cards_are_refused() {
    let world = World::new().await;
    let client = world.client();
    let tenant = uuid::Uuid::new_v4();
    let id = client.create_customer(tenant, "a@b.test").await.unwrap();
    assert_eq!(
        id,
        client
            .create_customer(tenant, "other@b.test")
            .await
            .unwrap()
    );
    assert_ne!(
        id,
        client
            .create_customer(uuid::Uuid::new_v4(), "a@b.test")
            .await
            .unwrap()
    );
    assert_eq!(client.name(), "efi");

    let mut dollars = request(PaymentMethod::Pix, 4990);
    dollars.currency = "USD".into();
    assert!(client.checkout(&dollars).await.is_err());
    assert!(
        client
            .checkout(&request(PaymentMethod::CreditCard, 4990))
            .await
            .is_err()
    );
    assert_eq!(
        world.fake.token_requests(Api::Pix),
        0,
        "refused before any call"
    );
}
