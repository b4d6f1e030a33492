//! The Efí client and webhook listener against the fake Efí of the testkit, over real mutual
//! TLS with certificates made for each test.

mod checkout;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tenantry_kit::{Clock, ManualClock, SystemClock};
use tenantry_testkit::fakes::efi::{FakeEfi, FakeEfiSettings};
use tenantry_testkit::pki::{Pair, Pki};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Deliver, EfiClient, listener, webhook_acceptor};
use crate::config::{BillingConfig, EfiConfig};
use crate::payments::{CheckoutRequest, Delivery, Payer, PaymentMethod};

const CLIENT_ID: &str = "Client_Id_tenantry";
const CLIENT_SECRET: &str = "Client_Secret_tenantry";
const PIX_KEY: &str = "pix@tenantry.test";

/// One test's Efí: its certificates, the fake, and our settings pointing at it.
struct World {
    pki: Pki,
    fake: FakeEfi,
    config: EfiConfig,
    /// Signs Efí's API server certificate and the application certificates Efí issues.
    efi_ca: Pair,
    /// Signs the certificate Efí presents to our webhook.
    efi_webhook_ca: Pair,
    /// Signs our webhook listener's server certificate.
    our_ca: Pair,
}

impl World {
    async fn new() -> Self {
        let pki = Pki::new();
        let efi_ca = pki.ca("efi-ca");
        let efi_webhook_ca = pki.ca("efi-webhook-ca");
        let our_ca = pki.ca("tenantry-ca");
        let efi_server = pki.server(&efi_ca, "efi-api");
        let our_client = pki.client(&efi_ca, "tenantry-app");
        let efi_webhook_client = pki.client(&efi_webhook_ca, "efi-webhook");
        let our_listener = pki.server(&our_ca, "tenantry-webhook");
        let fake = FakeEfi::start(FakeEfiSettings {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            pix_key: PIX_KEY.into(),
            server: efi_server,
            client_ca: efi_ca.cert.clone(),
            webhook_client: efi_webhook_client,
            webhook_server_ca: our_ca.cert.clone(),
            token_ttl: Duration::from_secs(3600),
        })
        .await;
        let mut config = BillingConfig::ephemeral().efi;
        config.api_base = fake.url();
        config.charges_api_base = fake.url();
        config.client_id = CLIENT_ID.into();
        config.client_secret = CLIENT_SECRET.into();
        config.certificate = Some(our_client.cert);
        config.private_key = Some(our_client.key);
        config.server_ca = Some(efi_ca.cert.clone());
        config.pix_key = PIX_KEY.into();
        config.pix_expiry_secs = 3600;
        config.webhook_certificate = Some(our_listener.cert);
        config.webhook_private_key = Some(our_listener.key);
        config.webhook_client_ca = Some(efi_webhook_ca.cert.clone());
        Self {
            pki,
            fake,
            config,
            efi_ca,
            efi_webhook_ca,
            our_ca,
        }
    }

    fn client(&self) -> EfiClient {
        self.client_with(Arc::new(SystemClock))
    }

    fn client_with(&self, clock: Arc<dyn Clock>) -> EfiClient {
        EfiClient::from_config(&self.config, clock)
            .unwrap()
            .expect("efi is configured")
    }

    fn manual_client(&self) -> (EfiClient, ManualClock) {
        let clock = ManualClock::new(Utc::now());
        (self.client_with(Arc::new(clock.clone())), clock)
    }

    /// Starts our webhook listener, registered at the fake; deliveries arrive on the channel,
    /// or are refused with `refuse` when set.
    async fn listen(
        &self,
        refuse: Option<&'static str>,
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Delivery>) {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let acceptor = webhook_acceptor(&self.config).unwrap().unwrap();
        let (sender, deliveries) = mpsc::unbounded_channel();
        let deliver: Deliver = Arc::new(move |delivery| {
            let sender = sender.clone();
            Box::pin(async move {
                if let Some(why) = refuse {
                    return Err(why.to_owned());
                }
                sender.send(delivery).map_err(|e| e.to_string())
            })
        });
        tokio::spawn(listener::serve(
            tcp,
            acceptor,
            deliver,
            std::future::pending(),
        ));
        self.fake
            .set_webhook_url(&format!("https://{addr}/webhook"))
            .await;
        (addr, deliveries)
    }
}

fn request(method: PaymentMethod, amount_minor: i64) -> CheckoutRequest {
    CheckoutRequest {
        tenant_id: Uuid::new_v4(),
        plan: "pro".into(),
        plan_display_name: "Tenantry Pro".into(),
        amount_minor,
        currency: "BRL".into(),
        interval: "month",
        method,
        billing_email: "billing@acme.test".into(),
        callback_url: "https://app.tenantry.test/billing".into(),
        customer_id: String::new(),
        payer: Some(Payer {
            name: "Maria Souza".into(),
            tax_id: "94271564656".into(),
        }),
    }
}
