//! Billing's clockwork: periods that ended are closed (their invoice drafted, the next
//! period started), drafts are finalized after a while, subscriptions past due beyond the
//! grace are suspended, and the tenant service is asked to suspend (or, once paid,
//! reactivate) their tenants with billing's own credential.
//!
//! Every command id is derived from what it does (the tenant and the period), so two
//! replicas running the same round append each event once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;
use tenantry_eventstore::{CommandMeta, Repository};
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::{ApiError, Clock};
use tenantry_proto::tenant::v1 as tenant_api;
use tenantry_proto::tenant::v1::tenant_service_client::TenantServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::domain::subscription::{self, InvoiceState, Subscription, SubscriptionCommand};
use crate::projection::queries;

/// Subscriptions handled at once while closing periods (each a few round trips).
const CONCURRENCY: usize = 64;
/// Subscriptions read per page.
const PAGE: i64 = 2_000;

/// The tenant service, called with billing's own credential.
#[derive(Clone)]
pub struct TenantService {
    pub client: TenantServiceClient<Channel>,
    pub credential: Arc<str>,
}

impl TenantService {
    /// `message` with billing's credential as its bearer token (public for the test that
    /// shows the tenant service accepts billing's platform key).
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, ApiError> {
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {}", self.credential)
            .parse()
            .map_err(|_| ApiError::Internal("billing's credential is not a header value".into()))?;
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

#[derive(Clone)]
pub struct Periods {
    pub pool: PgPool,
    pub subscriptions: Repository<Subscription>,
    pub clock: Arc<dyn Clock>,
    pub grace: chrono::Duration,
    pub finalize_after: chrono::Duration,
    pub tenants: Option<TenantService>,
    pub every: Duration,
}

fn meta(command_id: String, now: DateTime<Utc>) -> CommandMeta {
    CommandMeta {
        correlation_id: command_id.clone(),
        command_id,
        actor: "system:billing".into(),
        occurred_at: now,
        traceparent: None,
        fingerprint: None,
    }
}

impl Periods {
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "billing's periodic round failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One round of everything: what is due now is done.
    pub async fn round(&self) -> Result<(), ApiError> {
        self.close_due().await?;
        self.finalize_drafts().await?;
        self.suspend_overdue().await?;
        self.sync_tenants().await?;
        self.forget_old_deliveries().await
    }

    /// Webhook deliveries are remembered 30 days (Stripe retries for 3): older ones go.
    pub async fn forget_old_deliveries(&self) -> Result<(), ApiError> {
        let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE received_at < $1")
            .bind(self.clock.now() - chrono::Duration::days(30))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn platform_rows<T>(
        &self,
        sql: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Vec<T>, ApiError>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
        let rows = sqlx::query_as(sql)
            .bind(now)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Closes every period that has ended; returns how many.
    pub async fn close_due(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let mut closed = 0;
        loop {
            let due: Vec<(Uuid,)> = self
                .platform_rows(
                    "SELECT tenant_id FROM subscriptions
                     WHERE period_end <= $1 AND status <> 'canceled'
                     ORDER BY period_end LIMIT $2",
                    now,
                )
                .await?;
            if due.is_empty() {
                return Ok(closed);
            }
            let results: Vec<Result<bool, ApiError>> = futures::stream::iter(due)
                .map(|(tenant,)| self.close(tenant, now))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let mut progressed = false;
            for r in results {
                if r? {
                    closed += 1;
                    progressed = true;
                }
            }
            // The read model lags the log: wait for it rather than close again.
            if !progressed {
                return Ok(closed);
            }
            self.caught_up().await;
        }
    }

    /// Waits (briefly) for the read model to show what was just appended.
    async fn caught_up(&self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn close(&self, tenant: Uuid, now: DateTime<Utc>) -> Result<bool, ApiError> {
        let address = subscription::address(tenant)?;
        let (sub, _) = self.subscriptions.load(&address).await?;
        if sub.period_end > now || sub.price.is_none() {
            return Ok(false);
        }
        let next = match sub.scheduled.as_deref() {
            Some(name) if !name.is_empty() => {
                let mut conn = self.pool.acquire().await?;
                queries::plan(&mut conn, name).await?
            }
            _ => None,
        };
        let usage: BTreeMap<String, u64> =
            queries::usage_between(&self.pool, tenant, sub.period_start, sub.period_end)
                .await?
                .into_iter()
                .collect();
        let id = format!("close-{tenant}-{}", sub.period_end.timestamp());
        self.subscriptions
            .execute(
                &address,
                &SubscriptionCommand::ClosePeriod { next, usage, now },
                &meta(id, now),
            )
            .await?;
        Ok(true)
    }

    /// Opens the drafts drafted at least `finalize_after` ago.
    pub async fn finalize_drafts(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let due: Vec<(Uuid, i64)> = self
            .platform_rows(
                "SELECT tenant_id, number FROM invoices WHERE status = 'draft' AND issued_at <= $1
                 ORDER BY issued_at LIMIT $2",
                now - self.finalize_after,
            )
            .await?;
        let results: Vec<Result<(), ApiError>> = futures::stream::iter(due.iter().copied())
            .map(|(tenant, number)| async move {
                let number = u64::try_from(number).unwrap_or(0);
                let id = format!("finalize-{tenant}-{number}");
                self.subscriptions
                    .execute(
                        &subscription::address(tenant)?,
                        &SubscriptionCommand::FinalizeInvoice { number },
                        &meta(id, now),
                    )
                    .await?;
                Ok(())
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(due.len())
    }

    /// Suspends the subscriptions past due for longer than the grace.
    pub async fn suspend_overdue(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let due: Vec<(Uuid, DateTime<Utc>)> = self
            .platform_rows(
                "SELECT tenant_id, past_due_since FROM subscriptions
                 WHERE status = 'past_due' AND past_due_since <= $1 LIMIT $2",
                now - self.grace,
            )
            .await?;
        for (tenant, since) in &due {
            let id = format!("suspend-{tenant}-{}", since.timestamp());
            self.subscriptions
                .execute(
                    &subscription::address(*tenant)?,
                    &SubscriptionCommand::Suspend {
                        grace: self.grace,
                        now,
                    },
                    &meta(id, now),
                )
                .await?;
        }
        Ok(due.len())
    }

    /// Brings tenants' standing in line with their subscriptions: suspended for
    /// non-payment → the tenant suspended; paid again → the tenant billing suspended is
    /// reactivated (a suspension billing did not ask for is left alone).
    pub async fn sync_tenants(&self) -> Result<(), ApiError> {
        let Some(tenants) = &self.tenants else {
            return Ok(());
        };
        let now = self.clock.now();
        let rows: Vec<(Uuid, String)> = self
            .platform_rows(
                "SELECT tenant_id, status FROM subscriptions
                 WHERE (status = 'suspended' AND NOT tenant_suspended)
                    OR (status <> 'suspended' AND tenant_suspended)
                 LIMIT $2",
                now,
            )
            .await?;
        for (tenant, status) in rows {
            let suspend = status == "suspended";
            let mut client = tenants.client.clone();
            let outcome = if suspend {
                client
                    .suspend_tenant(tenants.request(tenant_api::SuspendTenantRequest {
                        tenant_id: tenant.to_string(),
                        reason: "payment overdue".into(),
                    })?)
                    .await
            } else {
                client
                    .reactivate_tenant(tenants.request(tenant_api::ReactivateTenantRequest {
                        tenant_id: tenant.to_string(),
                    })?)
                    .await
            };
            if let Err(status) = outcome {
                tracing::warn!(%tenant, suspend, error = %status, "the tenant service refused");
                continue;
            }
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            sqlx::query("UPDATE subscriptions SET tenant_suspended = $2 WHERE tenant_id = $1")
                .bind(tenant)
                .bind(suspend)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(%tenant, suspend, "tenant standing changed for billing");
        }
        Ok(())
    }
}

/// Whether `sub` has drafts waiting (for tests and the period-close bench).
pub fn drafts(sub: &Subscription) -> usize {
    sub.unpaid
        .values()
        .filter(|(state, _)| *state == InvoiceState::Draft)
        .count()
}
