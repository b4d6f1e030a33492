//! What billing does with its payment providers: opens checkouts for a tenant (its customer
//! at the provider created once and kept on the subscription), and acts on verified webhook
//! deliveries exactly once.
//!
//! A delivery is recorded in `webhook_deliveries` in the transaction that acts on it: a
//! second delivery of the same id waits for the first's transaction and then finds the row,
//! so a thousand concurrent redeliveries have one effect; a delivery whose effect failed is
//! rolled back and acted on when the provider retries.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::PgPool;
use tenantry_eventstore::{CommandMeta, Repository};
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::{ApiError, Clock};
use uuid::Uuid;

use super::{Checkout, CheckoutRequest, Delivery, PaymentEvent, PaymentMethod, PaymentProvider};
use crate::domain::subscription::{self, Subscription, SubscriptionCommand};
use crate::projection::queries;

pub struct Payments {
    pub pool: PgPool,
    pub subscriptions: Repository<Subscription>,
    pub clock: Arc<dyn Clock>,
    /// Cards.
    pub stripe: Option<Arc<dyn PaymentProvider>>,
    /// Pix and boleto.
    pub efi: Option<Arc<dyn PaymentProvider>>,
}

fn system_meta(command_id: String, now: chrono::DateTime<chrono::Utc>) -> CommandMeta {
    CommandMeta {
        correlation_id: command_id.clone(),
        command_id,
        actor: "system:billing".into(),
        occurred_at: now,
        traceparent: None,
        fingerprint: None,
    }
}

impl Payments {
    /// The provider that takes `method`.
    pub fn provider(&self, method: PaymentMethod) -> Result<&Arc<dyn PaymentProvider>, ApiError> {
        let provider = match method {
            PaymentMethod::CreditCard => self.stripe.as_ref(),
            PaymentMethod::Pix | PaymentMethod::Boleto => self.efi.as_ref(),
        };
        provider.ok_or_else(|| {
            ApiError::FailedPrecondition(format!(
                "payment_method {} is not configured on this deployment",
                method.as_str()
            ))
        })
    }

    /// Opens a checkout of `request` (its customer id filled in here) for the tenant whose
    /// subscription is `sub`.
    pub async fn checkout(
        &self,
        sub: &Subscription,
        mut request: CheckoutRequest,
    ) -> Result<(&'static str, Checkout), ApiError> {
        let provider = self.provider(request.method)?;
        let name = provider.name();
        let tenant_id = request.tenant_id;
        let customer = match sub.customers.get(name) {
            Some(id) => id.clone(),
            None => {
                let id = provider
                    .create_customer(tenant_id, &request.billing_email)
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
                // The first customer linked stays the tenant's: a racing checkout that
                // created another (the provider's idempotency key makes that rare) uses it.
                let executed = self
                    .subscriptions
                    .execute(
                        &subscription::address(tenant_id)?,
                        &SubscriptionCommand::LinkCustomer {
                            provider: name.into(),
                            customer_id: id.clone(),
                            billing_email: request.billing_email.clone(),
                        },
                        &system_meta(format!("link-{name}-{tenant_id}"), self.clock.now()),
                    )
                    .await?;
                executed.state.customers.get(name).cloned().unwrap_or(id)
            }
        };
        request.customer_id = customer;
        let checkout = provider
            .checkout(&request)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant_id)).await?;
        sqlx::query(
            "INSERT INTO checkouts (provider, reference, tenant_id, plan) VALUES ($1, $2, $3, $4)
             ON CONFLICT (provider, reference) DO NOTHING",
        )
        .bind(name)
        .bind(&checkout.reference)
        .bind(tenant_id)
        .bind(&request.plan)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((name, checkout))
    }

    /// Acts on a verified delivery once, however often it arrives.
    pub async fn deliver(&self, delivery: Delivery) -> Result<(), ApiError> {
        let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
        let fresh: Option<(i32,)> = sqlx::query_as(
            "INSERT INTO webhook_deliveries (provider, id, received_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING 1",
        )
        .bind(delivery.provider)
        .bind(&delivery.id)
        .bind(self.clock.now())
        .fetch_optional(&mut *tx)
        .await?;
        if fresh.is_none() {
            tx.commit().await?;
            return Ok(());
        }
        for (n, event) in delivery.events.iter().enumerate() {
            let id = format!("{}:{}:{n}", delivery.provider, delivery.id);
            self.apply(&mut tx, delivery.provider, event, id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        provider: &'static str,
        event: &PaymentEvent,
        command_id: String,
    ) -> Result<(), ApiError> {
        let now = self.clock.now();
        let run = |tenant: Uuid, command: SubscriptionCommand, suffix: &str| {
            let meta = system_meta(format!("{command_id}:{suffix}"), now);
            async move {
                self.subscriptions
                    .execute(&subscription::address(tenant)?, &command, &meta)
                    .await?;
                Ok::<(), ApiError>(())
            }
        };
        match event {
            PaymentEvent::CheckoutCompleted {
                tenant_id,
                plan,
                customer_id,
                reference,
            } => {
                // The checkout must be one we opened for that tenant.
                let Some((tenant, opened_for)) = checkout_of(tx, provider, reference).await? else {
                    tracing::warn!(provider, reference, "a completed checkout we did not open");
                    return Ok(());
                };
                if tenant != *tenant_id || opened_for != *plan {
                    tracing::warn!(
                        provider,
                        reference,
                        "a completed checkout's tenant or plan differs"
                    );
                    return Ok(());
                }
                run(
                    tenant,
                    SubscriptionCommand::LinkCustomer {
                        provider: provider.into(),
                        customer_id: customer_id.clone(),
                        billing_email: String::new(),
                    },
                    "link",
                )
                .await?;
                self.move_to(tx, tenant, plan, &command_id).await
            }
            PaymentEvent::Paid {
                customer_id,
                reference,
                amount_minor,
                currency,
            } => {
                // A Pix payment names its charge: the checkout's plan takes effect too.
                let checkout = checkout_of(tx, provider, reference).await?;
                let tenant = match &checkout {
                    Some((tenant, _)) => Some(*tenant),
                    None => tenant_of_customer(tx, provider, customer_id).await?,
                };
                let Some(tenant) = tenant else {
                    tracing::warn!(provider, reference, "a payment of no tenant we know");
                    return Ok(());
                };
                run(
                    tenant,
                    SubscriptionCommand::PaymentSucceeded {
                        provider: provider.into(),
                        reference: reference.clone(),
                        amount_minor: *amount_minor,
                        currency: currency.clone(),
                        now,
                    },
                    "paid",
                )
                .await?;
                if let Some((tenant, plan)) = checkout.filter(|_| provider != "stripe") {
                    self.move_to(tx, tenant, &plan, &command_id).await?;
                }
                Ok(())
            }
            PaymentEvent::PaymentFailed {
                customer_id,
                reference,
            } => {
                let Some(tenant) = tenant_of_customer(tx, provider, customer_id).await? else {
                    return Ok(());
                };
                run(
                    tenant,
                    SubscriptionCommand::PaymentFailed {
                        provider: provider.into(),
                        reference: reference.clone(),
                        now,
                    },
                    "failed",
                )
                .await
            }
            PaymentEvent::SubscriptionDeleted { customer_id } => {
                let Some(tenant) = tenant_of_customer(tx, provider, customer_id).await? else {
                    return Ok(());
                };
                run(tenant, SubscriptionCommand::Cancel, "cancel").await
            }
        }
    }

    /// Changes the tenant's plan to the one it paid for.
    async fn move_to(
        &self,
        tx: &mut sqlx::PgConnection,
        tenant: Uuid,
        plan: &str,
        command_id: &str,
    ) -> Result<(), ApiError> {
        let Some(to) = queries::plan(&mut *tx, plan).await? else {
            tracing::warn!(plan, "a checkout paid for a plan no longer in the catalog");
            return Ok(());
        };
        let now = self.clock.now();
        let usage: BTreeMap<String, u64> = queries::current_usage(&self.pool, tenant, now)
            .await?
            .into_iter()
            .collect();
        self.subscriptions
            .execute(
                &subscription::address(tenant)?,
                &SubscriptionCommand::ChangePlan { to, usage, now },
                &system_meta(format!("{command_id}:plan"), now),
            )
            .await?;
        Ok(())
    }
}

async fn checkout_of(
    tx: &mut sqlx::PgConnection,
    provider: &str,
    reference: &str,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, plan FROM checkouts WHERE provider = $1 AND reference = $2")
        .bind(provider)
        .bind(reference)
        .fetch_optional(tx)
        .await
}

async fn tenant_of_customer(
    tx: &mut sqlx::PgConnection,
    provider: &str,
    customer_id: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    if customer_id.is_empty() {
        return Ok(None);
    }
    let row: Option<(Uuid,)> = sqlx::query_as(
        "SELECT tenant_id FROM subscriptions WHERE state->'customers'->>$1 = $2 LIMIT 1",
    )
    .bind(provider)
    .bind(customer_id)
    .fetch_optional(tx)
    .await?;
    Ok(row.map(|(t,)| t))
}
