//! Efí (formerly Gerencianet): Pix and boleto.
//!
//! Efí has no Rust SDK; this speaks its HTTP APIs as documented (dev.efipay.com.br).
//!
//! # Layout
//! - [`EfiClient`]: the [`PaymentProvider`] named "efi": Pix charges and boletos.
//! - `client`: the HTTP client over mutual TLS, and the OAuth2 tokens of Efí's two APIs
//!   (Pix, charges), cached until they expire.
//! - `pix`: Pix immediate charges (`cob`) and their QR codes, under a txid derived from the
//!   checkout so a retry does not open a second charge.
//! - `boleto`: boletos through the charges API (`/v1/charge/one-step`).
//! - `payer`: the payer's CPF or CNPJ, which a boleto cannot be issued without.
//! - [`webhook`]: what Efí posts when a Pix charge is paid, turned into [`Delivery`]s.
//! - [`notification`]: what a boleto's notification token stands for (Efí's charges API),
//!   turned into [`Delivery`]s.
//! - [`listener`]: the webhook's TLS listener, which refuses any client without Efí's
//!   certificate during the handshake.
//! - [`tls`]: the rustls configurations of both directions.
//!
//! [`Delivery`]: crate::payments::Delivery

mod boleto;
mod client;
pub mod listener;
pub mod notification;
mod payer;
mod pix;
pub mod tls;
pub mod webhook;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use tenantry_kit::Clock;
use tokio_rustls::TlsAcceptor;
use uuid::Uuid;

pub use pix::parse_amount;
pub use tls::TlsError;
pub use webhook::Deliver;

use crate::config::EfiConfig;
use crate::payments::{Checkout, CheckoutRequest, PaymentError, PaymentMethod, PaymentProvider};
use client::{Http, failed};

/// Why the Efí client or its webhook listener could not be set up (at start-up).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting Efí cannot work without, by its flag name.
    #[error("{0} is required when efi-client-id is set")]
    Missing(&'static str),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("efi http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Efí's Pix and boleto checkouts.
pub struct EfiClient {
    http: Http,
    /// The Pix key charges are paid to.
    pix_key: String,
    pix_expiry_secs: u32,
    boleto_due_days: u32,
    /// Where Efí posts a boleto's status changes (billing's `/webhooks/efi/charges`, as the
    /// Internet reaches it); empty: boletos are issued without, and only Pix settles.
    notification_url: String,
    /// Pix txids are derived per time window, boleto due dates per day.
    clock: Arc<dyn Clock>,
}

impl EfiClient {
    /// The client `config` describes; `None` when Efí is not configured (no client id).
    pub fn from_config(
        config: &EfiConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, SetupError> {
        if config.client_id.is_empty() {
            return Ok(None);
        }
        if config.pix_key.is_empty() {
            return Err(SetupError::Missing("efi-pix-key"));
        }
        // Every call to the Pix API, its token request included, is made with our certificate.
        let certificate = config
            .certificate
            .as_deref()
            .ok_or(SetupError::Missing("efi-certificate"))?;
        let private_key = config
            .private_key
            .as_deref()
            .ok_or(SetupError::Missing("efi-private-key"))?;
        let tls = tls::client_config(certificate, private_key, config.server_ca.as_deref())?;
        Ok(Some(Self {
            http: Http::new(config, tls)?,
            pix_key: config.pix_key.clone(),
            pix_expiry_secs: config.pix_expiry_secs.max(1),
            boleto_due_days: config.boleto_due_days,
            notification_url: config.notification_url.clone(),
            clock,
        }))
    }
}

impl EfiClient {
    /// The payments a boleto notification's `token` reports, asked of Efí (`None`: Efí
    /// knows no such token).
    pub async fn boleto_notification(
        &self,
        token: &str,
    ) -> Result<Option<Vec<crate::payments::Delivery>>, PaymentError> {
        notification::deliveries(&self.http, token).await
    }
}

/// The webhook listener's TLS `config` describes; `None` when Efí is not configured.
pub fn webhook_acceptor(config: &EfiConfig) -> Result<Option<TlsAcceptor>, SetupError> {
    if config.client_id.is_empty() {
        return Ok(None);
    }
    let path = |p: &Option<std::path::PathBuf>, flag| p.clone().ok_or(SetupError::Missing(flag));
    Ok(Some(tls::webhook_acceptor(
        &path(&config.webhook_certificate, "efi-webhook-certificate")?,
        &path(&config.webhook_private_key, "efi-webhook-private-key")?,
        &path(&config.webhook_client_ca, "efi-webhook-client-ca")?,
    )?))
}

#[tonic::async_trait]
impl PaymentProvider for EfiClient {
    fn name(&self) -> &'static str {
        "efi"
    }

    /// Efí keeps no customer object: a Pix charge names its debtor inline, and so does a
    /// boleto its customer. The id is therefore ours, derived from the tenant: the same on
    /// every call, so billing's one-customer-per-tenant-and-provider bookkeeping holds, and
    /// no call is made.
    async fn create_customer(&self, tenant_id: Uuid, _email: &str) -> Result<String, PaymentError> {
        Ok(format!("efi_{}", tenant_id.simple()))
    }

    async fn checkout(&self, request: &CheckoutRequest) -> Result<Checkout, PaymentError> {
        let now = self.clock.now();
        match request.method {
            PaymentMethod::Pix => {
                pix::checkout(
                    &self.http,
                    &self.pix_key,
                    self.pix_expiry_secs,
                    request,
                    now,
                )
                .await
            }
            PaymentMethod::Boleto => {
                boleto::checkout(
                    &self.http,
                    self.boleto_due_days,
                    &self.notification_url,
                    request,
                    now,
                )
                .await
            }
            PaymentMethod::CreditCard => Err(failed("cards are not taken through Efí")),
        }
    }
}
