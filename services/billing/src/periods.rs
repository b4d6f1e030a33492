//! Billing's clockwork: periods that ended are closed (their invoice drafted, the next
//! period started), drafts are finalized after a while, subscriptions past due beyond the
//! grace are suspended, and the tenant service is asked to suspend (or, once paid,
//! reactivate) their tenants with billing's own credential.
//!
//! Every command id is derived from what it does (the tenant and the period), so two
//! replicas running the same round append each event once.

use std::collections::{BTreeMap, HashMap};
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

use crate::domain::subscription::{self, Subscription, SubscriptionCommand};
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
    ///
    /// The due subscriptions are walked once, a page at a time in tenant order, so a round
    /// never waits for the read model to show the closes it has just appended, nor reads a
    /// subscription twice. A period still due after its close (a subscription more than one
    /// period behind) is closed by the next round.
    pub async fn close_due(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let mut closed = 0;
        let mut after = Uuid::nil();
        loop {
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            let due: Vec<(Uuid,)> = sqlx::query_as(
                "SELECT tenant_id FROM subscriptions
                 WHERE period_end <= $1 AND status <> 'canceled' AND tenant_id > $2
                 ORDER BY tenant_id LIMIT $3",
            )
            .bind(now)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let Some((last,)) = due.last().copied() else {
                return Ok(closed);
            };
            after = last;
            closed += self.close_page(due, now).await?;
        }
    }

    /// Closes the periods of a page of subscriptions the read model shows due: their
    /// aggregates loaded from the log, the usage of all their periods read in one statement,
    /// then each close appended.
    async fn close_page(&self, due: Vec<(Uuid,)>, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let loaded: Vec<Result<Option<(Uuid, Subscription)>, ApiError>> =
            futures::stream::iter(due)
                .map(|(tenant,)| async move {
                    let (sub, _) = self
                        .subscriptions
                        .load(&subscription::address(tenant)?)
                        .await?;
                    // The log is the truth: the read model may not show a close yet.
                    Ok((sub.period_end <= now && sub.price.is_some()).then_some((tenant, sub)))
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut subs = Vec::with_capacity(loaded.len());
        for r in loaded {
            subs.extend(r?);
        }
        if subs.is_empty() {
            return Ok(0);
        }
        let mut usage = self.usage_of(&subs).await?;
        let results: Vec<Result<(), ApiError>> = futures::stream::iter(subs)
            .map(|(tenant, sub)| {
                let usage = usage.remove(&tenant).unwrap_or_default();
                self.close(tenant, sub, usage, now)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let closed = results.len();
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(closed)
    }

    /// Each subscription's usage per meter over the months of its current period, in one
    /// statement (one round trip for the page instead of a transaction per subscription).
    async fn usage_of(
        &self,
        subs: &[(Uuid, Subscription)],
    ) -> Result<HashMap<Uuid, BTreeMap<String, u64>>, ApiError> {
        let tenants: Vec<Uuid> = subs.iter().map(|(t, _)| *t).collect();
        let from: Vec<DateTime<Utc>> = subs.iter().map(|(_, s)| s.period_start).collect();
        let to: Vec<DateTime<Utc>> = subs.iter().map(|(_, s)| s.period_end).collect();
        let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
        let rows: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT k.tenant_id, u.meter, sum(u.quantity)::bigint
             FROM UNNEST($1::uuid[], $2::timestamptz[], $3::timestamptz[])
                  AS k(tenant_id, period_start, period_end)
             JOIN usage_periods u ON u.tenant_id = k.tenant_id
              AND u.period_start >= k.period_start AND u.period_start < k.period_end
             -- API calls are the requests again, per day: not billed.
             WHERE u.meter <> $4
             GROUP BY k.tenant_id, u.meter",
        )
        .bind(&tenants)
        .bind(&from)
        .bind(&to)
        .bind(tenantry_contracts::billing::API_CALLS)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut usage: HashMap<Uuid, BTreeMap<String, u64>> = HashMap::new();
        for (tenant, meter, quantity) in rows {
            usage
                .entry(tenant)
                .or_default()
                .insert(meter, u64::try_from(quantity).unwrap_or(0));
        }
        Ok(usage)
    }

    /// Appends the close of `sub`'s period (loaded just before, so its aggregate is in the
    /// repository's cache: deciding costs no read).
    async fn close(
        &self,
        tenant: Uuid,
        sub: Subscription,
        usage: BTreeMap<String, u64>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let next = match sub.scheduled.as_deref() {
            Some(name) if !name.is_empty() => {
                let mut conn = self.pool.acquire().await?;
                queries::plan(&mut conn, name).await?
            }
            _ => None,
        };
        let id = format!("close-{tenant}-{}", sub.period_end.timestamp());
        self.subscriptions
            .execute(
                &subscription::address(tenant)?,
                &SubscriptionCommand::ClosePeriod { next, usage, now },
                &meta(id, now),
            )
            .await?;
        Ok(())
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
