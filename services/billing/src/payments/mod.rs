//! Payment providers behind one trait: Stripe (cards, Checkout Sessions) and Efí (Pix and
//! boleto). A provider opens checkouts and customers; its webhooks, once verified, become
//! [`PaymentEvent`]s that drive the subscription.
//!
//! - [`stripe`]: the Stripe API client and `Stripe-Signature` verification.
//! - [`service`]: checkouts for a tenant and verified deliveries acted on once.
//! - [`efi`]: Efí (Gerencianet): OAuth2 over mutual TLS, Pix `cob` and boleto, and the Pix
//!   webhook listener that requires Efí's client certificate.

pub mod efi;
pub mod service;
pub mod stripe;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How the tenant pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMethod {
    CreditCard,
    Pix,
    Boleto,
}

impl PaymentMethod {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "credit_card" => Some(Self::CreditCard),
            "pix" => Some(Self::Pix),
            "boleto" => Some(Self::Boleto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreditCard => "credit_card",
            Self::Pix => "pix",
            Self::Boleto => "boleto",
        }
    }
}

/// A checkout to open: the plan's price for one period, for one tenant.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    pub tenant_id: Uuid,
    pub plan: String,
    pub plan_display_name: String,
    pub amount_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// "month" or "year".
    pub interval: &'static str,
    pub method: PaymentMethod,
    pub billing_email: String,
    /// Where the payer returns after paying (Stripe's `success_url`).
    pub callback_url: String,
    /// The tenant's customer at this provider, reused on every checkout once it exists.
    pub customer_id: String,
    /// Who pays, by their tax id: a boleto cannot be issued without it (Efí refuses one with
    /// no CPF or CNPJ); a Pix charge names them as its debtor when known. Stripe ignores it.
    pub payer: Option<Payer>,
}

/// The payer as Brazilian charges name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer {
    /// A person's name, or a company's corporate name.
    pub name: String,
    /// Digits only: a CPF (11, a person) or a CNPJ (14, a company).
    pub tax_id: String,
}

/// What the payer is handed to pay with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkout {
    /// The provider's reference: a Checkout Session id, a Pix `txid`, a boleto charge id.
    pub reference: String,
    /// A page to send the payer to (Stripe Checkout, a boleto's PDF).
    pub url: String,
    /// Pix: the QR code image (data URL) and its copy-and-paste code.
    pub pix_qr_code: String,
    pub pix_copy_paste: String,
    /// Boleto: the typeable line.
    pub boleto_barcode: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a verified webhook tells billing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    /// A checkout was paid for `plan` (Stripe `checkout.session.completed`).
    CheckoutCompleted {
        tenant_id: Uuid,
        plan: String,
        customer_id: String,
        reference: String,
    },
    /// A charge was paid (Stripe `invoice.paid`, an Efí Pix or boleto payment).
    Paid {
        customer_id: String,
        reference: String,
        amount_minor: i64,
        currency: String,
    },
    /// A charge failed (Stripe `invoice.payment_failed`): the subscription is past due.
    PaymentFailed {
        customer_id: String,
        reference: String,
    },
    /// The provider ended the subscription (Stripe `customer.subscription.deleted`).
    SubscriptionDeleted { customer_id: String },
}

/// One verified webhook delivery: its provider-wide id (deduplicated) and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub provider: &'static str,
    /// Stripe's event id (`evt_…`); Efí's `endToEndId`.
    pub id: String,
    /// Empty for event types billing does not act on (acknowledged, nothing done).
    pub events: Vec<PaymentEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// The provider could not be reached or answered with an error; its body is not
    /// reflected (it may hold anything), only what failed.
    #[error("payment provider {provider}: {what}")]
    Provider {
        provider: &'static str,
        what: String,
    },
    /// The provider is not configured on this deployment.
    #[error("payment provider {0} is not configured")]
    NotConfigured(&'static str),
}

/// A payment provider.
#[tonic::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// "stripe" or "efi".
    fn name(&self) -> &'static str;

    /// Creates the tenant's customer and returns its id. Called once per tenant: billing
    /// keeps the id on the subscription and reuses it on every plan change.
    async fn create_customer(&self, tenant_id: Uuid, email: &str) -> Result<String, PaymentError>;

    /// Opens a checkout for `request.customer_id`.
    async fn checkout(&self, request: &CheckoutRequest) -> Result<Checkout, PaymentError>;
}
