//! The Pix webhook listener: payments arrive as deliveries, only from Efí's certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::AlertDescription;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::error::TryRecvError;
use tokio_rustls::TlsConnector;

use super::{World, request};
use crate::payments::efi::tls::{certificates, private_key};
use crate::payments::{PaymentEvent, PaymentMethod, PaymentProvider};
use tenantry_testkit::pki::Pair;

#[tokio::test]
async fn a_charge_paid_at_efi_arrives_as_a_delivery() {
    let world = World::new().await;
    let (_addr, mut deliveries) = world.listen(None).await;
    let checkout = world
        .client()
        .checkout(&request(PaymentMethod::Pix, 4990))
        .await
        .unwrap();

    let (end_to_end_id, status) = world.fake.pay(&checkout.reference).await.unwrap();
    assert_eq!(status, 200);
    let delivery = deliveries.recv().await.unwrap();
    assert_eq!(delivery.provider, "efi");
    assert_eq!(delivery.id, end_to_end_id);
    assert_eq!(
        delivery.events,
        vec![PaymentEvent::Paid {
            customer_id: String::new(),
            reference: checkout.reference,
            amount_minor: 4990,
            currency: "BRL".into(),
        }]
    );
}

#[tokio::test]
async fn a_delivery_billing_did_not_take_is_answered_500_so_efi_retries() {
    let world = World::new().await;
    let (_addr, _deliveries) = world.listen(Some("database unavailable")).await;
    let checkout = world
        .client()
        .checkout(&request(PaymentMethod::Pix, 4990))
        .await
        .unwrap();
    let (_, status) = world.fake.pay(&checkout.reference).await.unwrap();
    assert_eq!(status, 500);
}

#[tokio::test]
async fn malformed_notifications_are_answered_400_and_efis_registration_check_200() {
    let world = World::new().await;
    let (_addr, mut deliveries) = world.listen(None).await;
    for body in [
        &b"not json"[..],
        br#"{"pix":"E1"}"#,
        br#"{"pix":[{"txid":"abc","valor":"49.90"}]}"#,
        br#"{"pix":[{"endToEndId":"","txid":"abc","valor":"49.90"}]}"#,
        br#"{"pix":[{"endToEndId":"E1","txid":"abc","valor":"49,90"}]}"#,
        br#"{"pix":[{"endToEndId":"E1","txid":"abc","valor":"-1.00"}]}"#,
    ] {
        let status = world.fake.post_webhook(body.to_vec()).await.unwrap();
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
    }
    let status = world
        .fake
        .post_webhook(br#"{"evento":"teste_webhook"}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(deliveries.try_recv().unwrap_err(), TryRecvError::Empty);
}

/// Connects to the listener as a TLS client presenting `identity` (or nothing), and posts a
/// notification. In TLS 1.3 the server judges the client's certificate after the client's
/// side of the handshake is done, so its refusal (an alert) arrives on the first read.
async fn post_raw(addr: SocketAddr, ca: &Path, identity: Option<&Pair>) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca).unwrap() {
        roots.add(cert).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(pair) => builder
            .with_client_auth_cert(
                certificates(&pair.cert).unwrap(),
                private_key(&pair.key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let body = br#"{"pix":[{"endToEndId":"E09089356202601011200abcdefghijk","txid":"forgedforgedforgedforged0001","valor":"49.90","horario":"2026-01-01T12:00:00.000Z"}]}"#;
    let head = format!(
        "POST /webhook/pix HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), tls.read_to_string(&mut answer))
        .await
        .expect("the listener answers or closes")?;
    Ok(answer)
}

fn alert(error: &std::io::Error) -> Option<AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

#[tokio::test]
async fn clients_without_efis_certificate_are_refused_during_the_handshake() {
    let world = World::new().await;
    let (addr, mut deliveries) = world.listen(None).await;

    let none = post_raw(addr, &world.our_ca.cert, None).await.unwrap_err();
    assert_eq!(
        alert(&none),
        Some(AlertDescription::CertificateRequired),
        "{none:?}"
    );

    let impostor = world.pki.self_signed_client("efi-webhook");
    let forged = post_raw(addr, &world.our_ca.cert, Some(&impostor))
        .await
        .unwrap_err();
    assert_eq!(
        alert(&forged),
        Some(AlertDescription::UnknownCA),
        "{forged:?}"
    );

    // A genuine certificate, but from Efí's application CA rather than its webhook chain.
    let other = world.pki.client(&world.efi_ca, "some-efi-app");
    let misissued = post_raw(addr, &world.our_ca.cert, Some(&other))
        .await
        .unwrap_err();
    assert_eq!(
        alert(&misissued),
        Some(AlertDescription::UnknownCA),
        "{misissued:?}"
    );

    assert_eq!(deliveries.try_recv().unwrap_err(), TryRecvError::Empty);

    // The same request with Efí's certificate is taken: the refusals were the certificates'.
    let genuine = world.pki.client(&world.efi_webhook_ca, "efi-webhook-2");
    let answer = post_raw(addr, &world.our_ca.cert, Some(&genuine))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        deliveries.recv().await.unwrap().id,
        "E09089356202601011200abcdefghijk"
    );
}

#[tokio::test]
async fn the_listener_is_not_set_up_without_its_certificates() {
    let mut world = World::new().await;
    world.config.webhook_client_ca = None;
    let err = crate::payments::efi::webhook_acceptor(&world.config).err();
    assert!(
        matches!(
            err,
            Some(crate::payments::efi::SetupError::Missing(
                "efi-webhook-client-ca"
            ))
        ),
        "{err:?}"
    );
    let mut unconfigured = world.config.clone();
    unconfigured.client_id.clear();
    assert!(
        crate::payments::efi::webhook_acceptor(&unconfigured)
            .unwrap()
            .is_none()
    );
    // A provider, by name, to the billing service.
    let client = world.client();
    assert_eq!(client.name(), "efi");
}
