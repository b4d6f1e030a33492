//! The billing service: the plan catalog, subscriptions, usage roll-ups and quotas, and
//! payments.
//!
//! # Layout
//! - [`domain`]: the `plan` and `subscription` aggregates (pure `decide`/`evolve`), money and
//!   periods.
//! - [`api`]: the gRPC handlers and their access policy.
//! - [`projection`]: the catalog and subscription read models, and the trial each new tenant
//!   opens.
//! - [`usage`]: the `USAGE` roll-up and the quota dispatcher that closes the loop with the
//!   gateway.
//! - [`periods`]: periods closed and invoiced, drafts finalized, dunning and suspension.
//! - [`payments`]: the payment providers (Stripe, Efí) behind one trait.
//! - [`config`] and [`BillingService`]: its settings and its parts for the kit's template.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod domain;
pub mod mail;
pub mod payments;
pub mod periods;
pub mod projection;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tenantry_eventstore::Positions;
use tenantry_kit::Clock;
use tenantry_kit::service::{Context, Database, Parts, Service, StartError};
use tenantry_proto::billing::v1::billing_service_server::BillingServiceServer;

use api::BillingApi;
pub use config::BillingConfig;

/// Migrations of the `billing` schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The billing service: its settings, and what a test may replace.
pub struct BillingService {
    pub config: BillingConfig,
    pub clock: Arc<dyn Clock>,
}

/// What a started billing service hands back.
pub struct Handle {
    /// The subscriptions' read model position (alerts included).
    pub positions: Positions,
    /// The usage roll-up's position on the `USAGE` stream.
    pub usage_positions: Positions,
    /// Where the Efí Pix webhook listens (when Efí is configured).
    pub efi_webhook: Option<SocketAddr>,
    pub api: BillingApi,
}

impl Service for BillingService {
    type Config = BillingConfig;
    type Handle = Handle;
    const NAME: &'static str = "billing";

    fn new(config: BillingConfig) -> Self {
        Self {
            config,
            clock: Arc::new(tenantry_kit::SystemClock),
        }
    }

    fn listen(&self) -> SocketAddr {
        self.config.listen
    }

    fn database(&self) -> Option<Database> {
        Some(Database {
            schema: self.config.db_schema.clone(),
            role: self.config.db_role.clone(),
            max_connections: self.config.db_max_connections,
            migrator: &MIGRATOR,
        })
    }

    async fn build(self, ctx: Context) -> Result<Parts<Handle>, StartError> {
        let ctx_addr = ctx.addr;
        let catalog = ctx.projection(projection::catalog::CatalogProjection)?;
        let subscriptions = ctx.projection(projection::subscriptions::SubscriptionsProjection)?;
        let trials = ctx.projection(projection::trials::TrialsProjection {
            subscriptions: ctx.repository(1_000),
        })?;
        let subscriptions_repo = ctx.repository(100_000);
        let efi = payments::efi::EfiClient::from_config(&self.config.efi, self.clock.clone())
            .map_err(|e| StartError::Other(e.to_string()))?
            .map(Arc::new);
        let payments = Arc::new(payments::service::Payments {
            pool: ctx.pool()?,
            subscriptions: subscriptions_repo.clone(),
            clock: self.clock.clone(),
            stripe: match payments::stripe::StripeClient::new(&self.config.stripe) {
                Ok(c) => Some(Arc::new(c) as Arc<dyn payments::PaymentProvider>),
                Err(payments::PaymentError::NotConfigured(_)) => None,
                Err(e) => return Err(StartError::Other(e.to_string())),
            },
            efi: efi.clone().map(|c| c as Arc<dyn payments::PaymentProvider>),
        });
        let efi_webhook = match payments::efi::webhook_acceptor(&self.config.efi)
            .map_err(|e| StartError::Other(e.to_string()))?
        {
            Some(acceptor) => {
                let listener = tokio::net::TcpListener::bind(self.config.efi.webhook_listen)
                    .await
                    .map_err(|e| StartError::Other(format!("efi-webhook-listen: {e}")))?;
                Some((listener, acceptor))
            }
            None => None,
        };
        let crossed = Arc::new(tokio::sync::Notify::new());
        let rollup = ctx
            .projection(usage::rollup::UsageRollup::new(crossed.clone()))?
            .batch_size(usage::rollup::BATCH);
        let api = BillingApi {
            plans: ctx.repository(1_000),
            subscriptions: subscriptions_repo,
            pool: ctx.pool()?,
            catalog_positions: catalog.positions(),
            positions: subscriptions.positions(),
            clock: self.clock.clone(),
            payments: payments.clone(),
            read_wait: Duration::from_secs(5),
        };
        api.seed_catalog()
            .await
            .map_err(|e| StartError::Other(format!("seeding the plan catalog: {e}")))?;
        let webhooks =
            api::webhooks::router(payments.clone(), &self.config.stripe.webhook_secret, efi);
        let tenants = match &self.config.credential_file {
            Some(path) => {
                let credential = std::fs::read_to_string(path)
                    .map_err(|e| StartError::Other(format!("billing-credential-file: {e}")))?;
                let channel =
                    tonic::transport::Endpoint::from_shared(self.config.tenant_endpoint.clone())
                        .map_err(|e| StartError::Other(format!("billing-tenant-endpoint: {e}")))?
                        .connect_timeout(Duration::from_secs(5))
                        .timeout(Duration::from_secs(10))
                        .connect_lazy();
                Some(periods::TenantService {
                    client:
                        tenantry_proto::tenant::v1::tenant_service_client::TenantServiceClient::new(
                            channel,
                        ),
                    credential: credential.trim().into(),
                })
            }
            None => {
                tracing::warn!(
                    "no billing-credential-file: tenants past due beyond the grace will not be suspended"
                );
                None
            }
        };
        let periods = periods::Periods {
            pool: ctx.pool()?,
            subscriptions: api.subscriptions.clone(),
            clock: self.clock.clone(),
            grace: chrono::Duration::seconds(
                i64::try_from(self.config.grace_secs).unwrap_or(i64::MAX / 2),
            ),
            finalize_after: chrono::Duration::seconds(
                i64::try_from(self.config.invoice_finalize_secs).unwrap_or(i64::MAX / 2),
            ),
            tenants,
            every: Duration::from_millis(self.config.quota_interval_ms.max(10)),
        };
        let alert_mailer = usage::alerts::AlertMailer {
            pool: ctx.pool()?,
            mailer: Arc::new(
                mail::Mailer::new(&self.config.mail)
                    .map_err(|e| StartError::Other(e.to_string()))?,
            ),
            clock: self.clock.clone(),
            every: Duration::from_millis(self.config.quota_interval_ms.max(10)),
        };
        let dispatcher = usage::quota::QuotaDispatcher {
            pool: ctx.pool()?,
            subscriptions: api.subscriptions.clone(),
            clock: self.clock,
            wake: crossed,
            every: Duration::from_millis(self.config.quota_interval_ms.max(10)),
        };
        let handle = Handle {
            positions: subscriptions.positions(),
            usage_positions: rollup.positions(),
            efi_webhook: efi_webhook
                .as_ref()
                .and_then(|(listener, _)| listener.local_addr().ok()),
            api: api.clone(),
        };
        let mut parts = Parts::new(handle, api::policy::policy())
            .grpc(BillingServiceServer::new(api))
            .http(webhooks)
            .http(api::http::router(ctx_addr))
            .projection(catalog)
            .projection(subscriptions)
            .projection(trials)
            .projection(rollup)
            .job("quota_dispatcher", move |stop| dispatcher.run(stop.wait()))
            .job("periods", move |stop| periods.run(stop.wait()))
            .job("alert_mail", move |stop| alert_mailer.run(stop.wait()));
        if let Some((listener, acceptor)) = efi_webhook {
            let deliver: payments::efi::Deliver = Arc::new(move |delivery| {
                let payments = payments.clone();
                Box::pin(async move { payments.deliver(delivery).await.map_err(|e| e.to_string()) })
            });
            parts = parts.job("efi_webhook", move |stop| {
                payments::efi::listener::serve(listener, acceptor, deliver, stop.wait())
            });
        }
        Ok(parts)
    }
}
