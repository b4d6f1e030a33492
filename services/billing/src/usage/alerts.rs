//! Alert e-mails: each quota alert of the current month is e-mailed once to the tenant's
//! billing address, with the upgrade notice. Alerts are events and `ListAlerts` rows first;
//! the e-mail follows (a relay that is down delays it, nothing is lost: the row stays
//! unsent until a delivery succeeds).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::{ApiError, Clock};
use uuid::Uuid;

use crate::domain::Subscription;
use crate::domain::period::month_start;
use crate::mail::{Mailer, alert_message};

/// Where the upgrade notice sends the reader.
const UPGRADE_HINT: &str = "Upgrade with `tenantry billing change-plan` or a checkout (`POST /api/tenants/{id}/billing/checkout`).";

#[derive(Clone)]
pub struct AlertMailer {
    pub pool: PgPool,
    pub mailer: Arc<Mailer>,
    pub clock: Arc<dyn Clock>,
    pub every: Duration,
}

type Pending = (
    Uuid,
    String,
    DateTime<Utc>,
    i32,
    i64,
    i64,
    sqlx::types::Json<Subscription>,
    Option<String>,
);

impl AlertMailer {
    pub async fn run(self, stop: impl Future<Output = ()>) {
        if !self.mailer.is_enabled() {
            return;
        }
        let mut stop = std::pin::pin!(stop);
        loop {
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "e-mailing quota alerts failed; retrying");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// E-mails this month's alerts not e-mailed yet; returns how many were sent.
    pub async fn send_due(&self) -> Result<usize, ApiError> {
        let month = month_start(self.clock.now());
        let pending: Vec<Pending> = {
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            let rows = sqlx::query_as(
                "SELECT a.tenant_id, a.meter, a.period_start, a.percent, a.used, a.quota, s.state, n.name
                 FROM alerts a
                 JOIN subscriptions s USING (tenant_id)
                 LEFT JOIN tenant_names n USING (tenant_id)
                 WHERE NOT a.emailed AND a.period_start >= $1
                 ORDER BY a.at LIMIT 200",
            )
            .bind(month)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows
        };
        let mut sent = 0;
        for (tenant, meter, period, percent, used, quota, sub, name) in pending {
            let to = sub.0.billing_email.clone();
            // Nobody to write to: the alert stays in ListAlerts only.
            if !to.is_empty() {
                let plan = sub
                    .0
                    .price
                    .as_ref()
                    .map(|p| p.plan.clone())
                    .unwrap_or_default();
                let message = alert_message(
                    &to,
                    name.as_deref().unwrap_or(&tenant.to_string()),
                    &meter,
                    u32::try_from(percent).unwrap_or(0),
                    u64::try_from(used).unwrap_or(0),
                    u64::try_from(quota).unwrap_or(0),
                    &plan,
                    &UPGRADE_HINT.replace("{id}", &tenant.to_string()),
                );
                if let Err(e) = self.mailer.send(&message).await {
                    // A bad address will never work: log it and move on; a relay that is
                    // down is retried next round.
                    if e.is_permanent() {
                        tracing::warn!(%tenant, error = %e, "a quota alert could not be e-mailed");
                    } else {
                        return Err(ApiError::Unavailable(e.to_string()));
                    }
                } else {
                    sent += 1;
                }
            }
            let mut tx = scoped_tx(&self.pool, Scope::Platform).await?;
            sqlx::query(
                "UPDATE alerts SET emailed = true WHERE tenant_id = $1 AND meter = $2
                 AND period_start = $3 AND percent = $4",
            )
            .bind(tenant)
            .bind(&meter)
            .bind(period)
            .bind(percent)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(sent)
    }
}
