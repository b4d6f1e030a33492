//! The billing service's own settings (the shared ones are in `tenantry_kit::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct BillingConfig {
    /// Address of the billing service's gRPC and HTTP port (webhooks, usage reports).
    #[arg(
        id = "billing-listen",
        long = "billing-listen",
        env = "TENANTRY_BILLING_LISTEN",
        default_value = "127.0.0.1:7003"
    )]
    pub listen: SocketAddr,

    #[arg(
        id = "billing-db-schema",
        long = "billing-db-schema",
        env = "TENANTRY_BILLING_DB_SCHEMA",
        default_value = "billing"
    )]
    pub db_schema: String,

    #[arg(
        id = "billing-db-role",
        long = "billing-db-role",
        env = "TENANTRY_BILLING_DB_ROLE",
        default_value = "tenantry_billing"
    )]
    pub db_role: String,

    #[arg(
        id = "billing-db-max-connections",
        long = "billing-db-max-connections",
        env = "TENANTRY_BILLING_DB_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_max_connections: u32,

    /// How often quota crossings are appended and periods checked for their end (the
    /// roll-up wakes the dispatcher at once; this is the fallback).
    #[arg(
        id = "billing-quota-interval-ms",
        long = "billing-quota-interval-ms",
        env = "TENANTRY_BILLING_QUOTA_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub quota_interval_ms: u64,

    /// How long a subscription may stay past due before its tenant is suspended.
    #[arg(
        id = "billing-grace-secs",
        long = "billing-grace-secs",
        env = "TENANTRY_BILLING_GRACE_SECS",
        default_value_t = 7 * 24 * 3600
    )]
    pub grace_secs: u64,

    /// A draft invoice becomes open (to be collected) this long after it was drafted.
    #[arg(
        id = "billing-invoice-finalize-secs",
        long = "billing-invoice-finalize-secs",
        env = "TENANTRY_BILLING_INVOICE_FINALIZE_SECS",
        default_value_t = 3600
    )]
    pub invoice_finalize_secs: u64,

    /// The tenant service, which billing asks to suspend a tenant past due beyond the grace
    /// (and to reactivate it once paid).
    #[arg(
        id = "billing-tenant-endpoint",
        long = "billing-tenant-endpoint",
        env = "TENANTRY_BILLING_TENANT_ENDPOINT",
        default_value = "http://127.0.0.1:7001"
    )]
    pub tenant_endpoint: String,

    /// Billing's own credential for the tenant service: a file holding a platform service
    /// account's API key (`tk_…`) or an access token. Unset: tenants are not suspended
    /// (their subscriptions still are), and a warning says so at start.
    #[arg(
        id = "billing-credential-file",
        long = "billing-credential-file",
        env = "TENANTRY_BILLING_CREDENTIAL_FILE"
    )]
    pub credential_file: Option<PathBuf>,

    #[command(flatten)]
    pub stripe: StripeConfig,

    #[command(flatten)]
    pub efi: EfiConfig,

    #[command(flatten)]
    pub mail: crate::mail::MailConfig,
}

/// Stripe (cards). Unset secret key: checkouts by card are refused as not configured.
#[derive(Debug, Clone, clap::Args)]
pub struct StripeConfig {
    #[arg(
        id = "stripe-api-base",
        long = "stripe-api-base",
        env = "TENANTRY_STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub api_base: String,

    /// The secret API key (`sk_…`).
    #[arg(
        id = "stripe-secret-key",
        long = "stripe-secret-key",
        env = "TENANTRY_STRIPE_SECRET_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    pub secret_key: String,

    /// The webhook endpoint's signing secret (`whsec_…`).
    #[arg(
        id = "stripe-webhook-secret",
        long = "stripe-webhook-secret",
        env = "TENANTRY_STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub webhook_secret: String,
}

/// Efí (Pix and boleto). Unset client id: Pix and boleto checkouts are refused as not
/// configured, and the Pix webhook listener does not start.
#[derive(Debug, Clone, clap::Args)]
pub struct EfiConfig {
    #[arg(
        id = "efi-api-base",
        long = "efi-api-base",
        env = "TENANTRY_EFI_API_BASE",
        default_value = "https://pix.api.efipay.com.br"
    )]
    pub api_base: String,

    /// Efí's charges API (boleto), a different host from the Pix API with its own token.
    #[arg(
        id = "efi-charges-api-base",
        long = "efi-charges-api-base",
        env = "TENANTRY_EFI_CHARGES_API_BASE",
        default_value = "https://cobrancas.api.efipay.com.br"
    )]
    pub charges_api_base: String,

    #[arg(
        id = "efi-client-id",
        long = "efi-client-id",
        env = "TENANTRY_EFI_CLIENT_ID",
        default_value = ""
    )]
    pub client_id: String,

    #[arg(
        id = "efi-client-secret",
        long = "efi-client-secret",
        env = "TENANTRY_EFI_CLIENT_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub client_secret: String,

    /// Our client certificate and key for Efí's mutual TLS (PEM).
    #[arg(
        id = "efi-certificate",
        long = "efi-certificate",
        env = "TENANTRY_EFI_CERTIFICATE"
    )]
    pub certificate: Option<PathBuf>,

    #[arg(
        id = "efi-private-key",
        long = "efi-private-key",
        env = "TENANTRY_EFI_PRIVATE_KEY"
    )]
    pub private_key: Option<PathBuf>,

    /// The CA that signs Efí's API server certificate (PEM); unset: the system's roots.
    #[arg(
        id = "efi-server-ca",
        long = "efi-server-ca",
        env = "TENANTRY_EFI_SERVER_CA"
    )]
    pub server_ca: Option<PathBuf>,

    /// The Pix key charges are paid to.
    #[arg(
        id = "efi-pix-key",
        long = "efi-pix-key",
        env = "TENANTRY_EFI_PIX_KEY",
        default_value = ""
    )]
    pub pix_key: String,

    /// How long a Pix charge can be paid. Also the window in which a retried checkout gets
    /// the same charge back (see `payments::efi::pix`).
    #[arg(
        id = "efi-pix-expiry-secs",
        long = "efi-pix-expiry-secs",
        env = "TENANTRY_EFI_PIX_EXPIRY_SECS",
        default_value_t = 86_400
    )]
    pub pix_expiry_secs: u32,

    /// Days from the checkout to a boleto's due date.
    #[arg(
        id = "efi-boleto-due-days",
        long = "efi-boleto-due-days",
        env = "TENANTRY_EFI_BOLETO_DUE_DAYS",
        default_value_t = 3
    )]
    pub boleto_due_days: u32,

    /// Billing's `/webhooks/efi/charges` as Efí reaches it (https, public): boletos carry it
    /// as their `notification_url`, so a paid boleto moves the subscription. Empty: boletos
    /// are issued without one, and their payments must be settled by hand.
    #[arg(
        id = "efi-notification-url",
        long = "efi-notification-url",
        env = "TENANTRY_EFI_NOTIFICATION_URL",
        default_value = ""
    )]
    pub notification_url: String,

    /// Where the Pix webhook listener (mutual TLS) listens.
    #[arg(
        id = "efi-webhook-listen",
        long = "efi-webhook-listen",
        env = "TENANTRY_EFI_WEBHOOK_LISTEN",
        default_value = "127.0.0.1:7013"
    )]
    pub webhook_listen: SocketAddr,

    /// The listener's server certificate and key (PEM).
    #[arg(
        id = "efi-webhook-certificate",
        long = "efi-webhook-certificate",
        env = "TENANTRY_EFI_WEBHOOK_CERTIFICATE"
    )]
    pub webhook_certificate: Option<PathBuf>,

    #[arg(
        id = "efi-webhook-private-key",
        long = "efi-webhook-private-key",
        env = "TENANTRY_EFI_WEBHOOK_PRIVATE_KEY"
    )]
    pub webhook_private_key: Option<PathBuf>,

    /// The CA of the client certificate Efí presents when it calls the webhook (PEM): any
    /// other client is refused during the TLS handshake.
    #[arg(
        id = "efi-webhook-client-ca",
        long = "efi-webhook-client-ca",
        env = "TENANTRY_EFI_WEBHOOK_CLIENT_CA"
    )]
    pub webhook_client_ca: Option<PathBuf>,
}

impl BillingConfig {
    /// The defaults, on an ephemeral loopback port, no payment provider (tests, benchmarks).
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_schema: "billing".into(),
            db_role: "tenantry_billing".into(),
            db_max_connections: 16,
            quota_interval_ms: 200,
            grace_secs: 7 * 24 * 3600,
            invoice_finalize_secs: 0,
            tenant_endpoint: "http://127.0.0.1:7001".into(),
            credential_file: None,
            stripe: StripeConfig {
                api_base: String::new(),
                secret_key: String::new(),
                webhook_secret: String::new(),
            },
            efi: EfiConfig {
                api_base: String::new(),
                charges_api_base: String::new(),
                client_id: String::new(),
                client_secret: String::new(),
                certificate: None,
                private_key: None,
                server_ca: None,
                pix_key: String::new(),
                pix_expiry_secs: 3600,
                boleto_due_days: 3,
                notification_url: String::new(),
                webhook_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                webhook_certificate: None,
                webhook_private_key: None,
                webhook_client_ca: None,
            },
            mail: crate::mail::MailConfig::disabled(),
        }
    }
}
