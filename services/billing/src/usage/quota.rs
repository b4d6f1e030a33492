//! The quota dispatcher: thresholds the roll-up recorded become `quota_threshold_crossed`
//! events on the subscription (which the gateway enforces), and a quota window's end (a
//! month; a day for API calls) resets what was crossed in it.
//!
//! The roll-up wakes it as soon as a batch with crossings commits; otherwise it looks every
//! `every`. Command ids are derived from what they record, so two replicas dispatching the
//! same row append one event, and the aggregate refuses a second crossing of a threshold.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tenantry_eventstore::{CommandMeta, Repository};
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::{ApiError, Clock};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::subscription::{self, Subscription, SubscriptionCommand};

#[derive(Clone)]
pub struct QuotaDispatcher {
    pub pool: PgPool,
    pub subscriptions: Repository<Subscription>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
    pub every: Duration,
}

fn system_meta(command_id: String, now: DateTime<Utc>) -> CommandMeta {
    CommandMeta {
        correlation_id: command_id.clone(),
        command_id,
        actor: "system:billing".into(),
        occurred_at: now,
        traceparent: None,
        fingerprint: None,
    }
}

impl QuotaDispatcher {
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            if let Err(e) = self.reset_ended_windows().await {
                tracing::warn!(error = %e, "resetting quotas failed; retrying");
            }
            match self.dispatch().await {
                // More may be waiting: go on without sleeping.
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "appending quota crossings failed; retrying"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// Appends the crossings the roll-up recorded; returns how many rows it handled.
    pub async fn dispatch(&self) -> Result<usize, ApiError> {
        let rows: Vec<(Uuid, String, DateTime<Utc>, i32, i64, i64)> = {
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            let rows = sqlx::query_as(
                "SELECT tenant_id, meter, period_start, percent, used, quota FROM quota_outbox
                 WHERE NOT appended ORDER BY tenant_id, meter, percent LIMIT 1000",
            )
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows
        };
        let now = self.clock.now();
        for (tenant_id, meter, period_start, percent, used, quota) in &rows {
            let command = SubscriptionCommand::CrossThreshold {
                meter: meter.clone(),
                percent: u32::try_from(*percent).unwrap_or(0),
                used: u64::try_from(*used).unwrap_or(0),
                limit: u64::try_from(*quota).unwrap_or(0),
                period_start: *period_start,
            };
            let id = format!(
                "quota-{tenant_id}-{meter}-{}-{percent}-{quota}",
                period_start.timestamp()
            );
            self.subscriptions
                .execute(
                    &subscription::address(*tenant_id)?,
                    &command,
                    &system_meta(id, now),
                )
                .await?;
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            sqlx::query(
                "UPDATE quota_outbox SET appended = true WHERE tenant_id = $1 AND meter = $2
                 AND period_start = $3 AND percent = $4 AND quota = $5",
            )
            .bind(tenant_id)
            .bind(meter)
            .bind(period_start)
            .bind(percent)
            .bind(quota)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(rows.len())
    }

    /// Resets the quotas crossed in a window that has ended (a month, or a day for API
    /// calls).
    pub async fn reset_ended_windows(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let due: Vec<(Uuid, DateTime<Utc>)> = {
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            let due = sqlx::query_as(
                "SELECT tenant_id, quota_reset_due FROM subscriptions
                 WHERE quota_reset_due <= $1 ORDER BY quota_reset_due LIMIT 1000",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            due
        };
        for (tenant_id, due_at) in &due {
            let id = format!("quota-reset-{tenant_id}-{}", due_at.timestamp());
            self.subscriptions
                .execute(
                    &subscription::address(*tenant_id)?,
                    &SubscriptionCommand::ResetQuotas { now },
                    &system_meta(id, now),
                )
                .await?;
        }
        Ok(due.len())
    }
}
