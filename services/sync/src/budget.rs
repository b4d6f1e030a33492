//! Each tenant's daily API budget: every call a run makes to a provider spends one call of the
//! tenant's plan's `api_calls_per_day` (billing's `plan_limits_changed`, followed through the
//! kit's [`PlanDirectory`]; 0 or no plan: no limit, the calls are still counted). At 90% the
//! tenant is alerted once a day; when it is spent, no call is made and the run ends with
//! [`ConnectorError::BudgetExhausted`] until the next UTC day.
//!
//! The runner puts the run's [`Meter`] in [`METER`] around a run, and
//! [`crate::connectors::fetch_json`] spends from it before each call: every connector's every
//! call (pages, token refreshes, retries after a 429) is counted without each connector
//! carrying the meter. Calls outside a run (credential validation) spend nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};
use tenantry_eventstore::Repository;
use tenantry_kit::Clock;
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_kit::plans::PlanDirectory;
use uuid::Uuid;

use crate::alerts;
use crate::connectors::ConnectorError;
use crate::domain::Integration;

tokio::task_local! {
    /// The budget the calls of the current run spend.
    pub static METER: Meter;
}

/// The tenants' daily counts and their plans' limits. Cheap to clone.
#[derive(Clone)]
pub struct Budget {
    pub pool: PgPool,
    pub plans: Arc<PlanDirectory>,
}

impl Budget {
    /// The tenant's calls per day (0: no limit).
    pub fn limit(&self, tenant: Uuid) -> u64 {
        self.plans
            .limits(tenant)
            .map_or(0, |limits| limits.api_calls_per_day)
    }

    /// The tenant's calls on `day`.
    pub async fn used(&self, tenant: Uuid, day: NaiveDate) -> Result<u64, sqlx::Error> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant)).await?;
        let calls: Option<i64> =
            sqlx::query_scalar("SELECT calls FROM api_budget WHERE tenant_id = $1 AND day = $2")
                .bind(tenant)
                .bind(day)
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(calls.map_or(0, |c| u64::try_from(c).unwrap_or(0)))
    }

    /// Spends one call of `limit` (0: none) on `day`: the calls so far with this one, or `None`
    /// when the budget is spent (and nothing was counted). One statement, so concurrent runs
    /// of a tenant never overspend.
    pub async fn spend(
        &self,
        tenant: Uuid,
        day: NaiveDate,
        limit: u64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = scoped_tx(&self.pool, Scope::Tenant(tenant)).await?;
        let calls = spend_in(&mut tx, tenant, day, limit).await?;
        tx.commit().await?;
        Ok(calls)
    }
}

/// [`Budget::spend`] inside the caller's transaction, already scoped to `tenant`.
///
/// Every call spends one before it is made, and a run makes one or two: the transaction
/// commits without waiting for its WAL flush (`synchronous_commit` off for it). What a crash
/// of Postgres could lose is its last fraction of a second of spends: a few calls more than
/// the day's budget, never a record or a cursor (those are written by transactions of their
/// own).
async fn spend_in(
    tx: &mut PgConnection,
    tenant: Uuid,
    day: NaiveDate,
    limit: u64,
) -> Result<Option<u64>, sqlx::Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let calls: Option<i64> = sqlx::query_scalar(
        "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
         INSERT INTO api_budget (tenant_id, day, calls) SELECT $1, $2, 1 FROM unflushed
         ON CONFLICT (tenant_id, day) DO UPDATE SET calls = api_budget.calls + 1
             WHERE $3 = 0 OR api_budget.calls < $3
         RETURNING calls",
    )
    .bind(tenant)
    .bind(day)
    .bind(limit)
    .fetch_optional(tx)
    .await?;
    Ok(calls.map(|c| u64::try_from(c).unwrap_or(0)))
}

/// What one run spends from: its tenant's budget, and where a 90% alert goes.
#[derive(Clone)]
pub struct Meter {
    pub budget: Budget,
    pub integrations: Repository<Integration>,
    pub clock: Arc<dyn Clock>,
    pub tenant: Uuid,
    pub integration: Uuid,
    /// The run's first call, spent ahead by [`Meter::prepay`]: the next spend is free.
    pub prepaid: Arc<AtomicBool>,
}

impl Meter {
    /// Spends one call, or refuses it when the day's budget is spent.
    pub async fn spend(&self) -> Result<(), ConnectorError> {
        if self.prepaid.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let (limit, day) = self.today();
        let Some(used) = self.budget.spend(self.tenant, day, limit).await? else {
            return Err(ConnectorError::BudgetExhausted(limit));
        };
        self.spent(used).await;
        Ok(())
    }

    /// Spends the run's first call ahead, in `tx` (the transaction that opens the run's
    /// credentials, scoped to the tenant), so the run's first [`Meter::spend`] costs no
    /// transaction of its own. Call [`Meter::spent`] with the answer once `tx` committed.
    /// A run that ends before its first call has spent it all the same.
    pub async fn prepay(&self, tx: &mut PgConnection) -> Result<u64, ConnectorError> {
        let (limit, day) = self.today();
        let Some(used) = spend_in(tx, self.tenant, day, limit).await? else {
            return Err(ConnectorError::BudgetExhausted(limit));
        };
        self.prepaid.store(true, Ordering::Release);
        Ok(used)
    }

    fn today(&self) -> (u64, NaiveDate) {
        (
            self.budget.limit(self.tenant),
            self.clock.now().date_naive(),
        )
    }

    /// After a spend that made the day's calls `used`: at 90% of the limit, the tenant is
    /// alerted (once a day).
    pub async fn spent(&self, used: u64) {
        let (limit, day) = self.today();
        // 90% of the limit, in integers: used / limit >= 9 / 10.
        if limit == 0 || u128::from(used) * 10 < u128::from(limit) * 9 {
            return;
        }
        let message = format!(
            "{used} of the plan's {limit} API calls of {day} (UTC) are spent; runs stop at \
             {limit}"
        );
        // An alert not recorded now is tried again on the next call.
        if let Err(e) = alerts::raise_once_for_tenant(
            &self.budget.pool,
            &self.integrations,
            &self.clock,
            self.tenant,
            self.integration,
            alerts::API_BUDGET_90,
            message,
            &day.to_string(),
        )
        .await
        {
            tracing::warn!(tenant_id = %self.tenant, error = %e, "the API budget alert is not recorded yet");
        }
    }
}

/// Spends one call of the current run's budget (nothing outside a run).
pub async fn spend() -> Result<(), ConnectorError> {
    match METER.try_with(Clone::clone) {
        Ok(meter) => meter.spend().await,
        Err(_) => Ok(()),
    }
}
