//! The scheduler: integrations whose schedule is due get an incremental run on the `JOBS`
//! queue, once per due time.
//!
//! The scheduler wakes at the next due time (or after its tick, whichever comes first), so a
//! run is queued when it is due, not up to a tick later.
//!
//! The read model holds each integration's next due time (from its schedule and its last run);
//! the scheduler takes the due rows (`FOR UPDATE SKIP LOCKED`, so replicas share the work
//! without queuing twice), queues each job with the due time in its message id (a retry after
//! a crash is deduplicated by JetStream) and records the due time as queued.
//!
//! On the same tick it alerts on integrations whose next sync passed [`LATE_AFTER`] ago
//! without a run recorded (`sync_late`, once per due time).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tenantry_eventstore::{EventStore, Repository};
use tenantry_kit::Clock;
use tenantry_kit::db::{Scope, scoped_tx};
use uuid::Uuid;

use super::job::{Job, Mode, enqueue_all};
use crate::alerts::{self, LATE_AFTER};
use crate::domain::Integration;

/// Scheduled runs go after webhook (8) and manual (5) ones.
pub const PRIORITY: u8 = 3;
/// Integrations queued per transaction by default.
pub const BATCH: usize = 500;

/// How long the scheduler sleeps after a look that began at `looked_at`: until the next due
/// time if it comes within `every` (so a run due at 12:00:00 is queued at 12:00:00, not up to
/// a tick later), else `every` (new and changed schedules are seen within it). A due time
/// that was already due at the look was not queued by it (a failure): retried after `every`,
/// not in a busy loop.
fn until_next(
    looked_at: DateTime<Utc>,
    now: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
    every: Duration,
) -> Duration {
    match next {
        Some(due) if due > looked_at => (due - now).to_std().unwrap_or_default().min(every),
        _ => every,
    }
}

#[derive(Clone)]
pub struct Scheduler {
    pub pool: PgPool,
    pub store: EventStore,
    pub clock: Arc<dyn Clock>,
    pub every: Duration,
    /// Where late syncs' alerts are raised.
    pub integrations: Repository<Integration>,
    /// Integrations queued per transaction ([`BATCH`]).
    pub batch: usize,
}

impl Scheduler {
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let looked_at = self.clock.now();
            if let Err(e) = self.queue_due().await {
                tracing::warn!(error = %e, "scheduling sync runs failed; retrying");
            }
            if let Err(e) = self.alert_late().await {
                tracing::warn!(error = %e, "alerting on late syncs failed; retrying");
            }
            let wait = match self.next_due().await {
                Ok(next) => until_next(looked_at, self.clock.now(), next, self.every),
                Err(e) => {
                    tracing::warn!(error = %e, "reading the next due schedule failed; retrying");
                    self.every
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The earliest due time not queued yet, if any.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, String> {
        let mut tx = scoped_tx(&self.pool, Scope::Platform)
            .await
            .map_err(|e| e.to_string())?;
        let next: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(next_run_at) FROM integrations
             WHERE enabled AND (scheduled_for IS NULL OR scheduled_for < next_run_at)",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(next)
    }

    /// Queues a run for every integration due now, a batch at a time until none is left;
    /// answers how many.
    pub async fn queue_due(&self) -> Result<usize, String> {
        let now = self.clock.now();
        let mut queued = 0;
        loop {
            let batch = self.queue_due_batch(now).await?;
            queued += batch;
            // A full batch may have left more due now: at once, not a tick later.
            if batch < self.batch.max(1) {
                return Ok(queued);
            }
        }
    }

    /// Queues runs for up to `batch` integrations due at `now`, in one transaction.
    async fn queue_due_batch(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let mut tx = scoped_tx(&self.pool, Scope::Platform)
            .await
            .map_err(|e| e.to_string())?;
        let due: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT tenant_id, integration_id, next_run_at FROM integrations
             WHERE enabled AND next_run_at <= $1
               AND (scheduled_for IS NULL OR scheduled_for < next_run_at)
             ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::try_from(self.batch.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        if due.is_empty() {
            return Ok(0);
        }
        let jobs: Vec<(Job, String)> = due
            .iter()
            .map(|(tenant, id, at)| {
                let job = Job {
                    tenant_id: *tenant,
                    integration_id: *id,
                    run_id: Uuid::now_v7(),
                    mode: Mode::Incremental,
                    priority: PRIORITY,
                };
                (job, format!("schedule-{id}-{}", at.timestamp()))
            })
            .collect();
        // Queued before the rows are marked: a crash in between queues them again on the next
        // tick, under the same message ids, which JetStream drops as duplicates.
        enqueue_all(&self.store, &jobs).await?;
        let (tenants, ids, ats): (Vec<Uuid>, Vec<Uuid>, Vec<DateTime<Utc>>) = due.into_iter().fold(
            (vec![], vec![], vec![]),
            |(mut t, mut i, mut a), (tenant, id, at)| {
                t.push(tenant);
                i.push(id);
                a.push(at);
                (t, i, a)
            },
        );
        sqlx::query(
            "UPDATE integrations AS i SET scheduled_for = d.at
             FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[]) AS d(tenant_id, integration_id, at)
             WHERE i.tenant_id = d.tenant_id AND i.integration_id = d.integration_id",
        )
        .bind(&tenants)
        .bind(&ids)
        .bind(&ats)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(ids.len())
    }

    /// Alerts on every enabled integration whose next sync is [`LATE_AFTER`] past and not
    /// alerted for that due time yet; answers how many were alerted.
    pub async fn alert_late(&self) -> Result<usize, String> {
        let now = self.clock.now();
        let mut tx = scoped_tx(&self.pool, Scope::Platform)
            .await
            .map_err(|e| e.to_string())?;
        // The key of a due time is its Unix time; the alerted ones are skipped by the state's
        // `alerted` map (the aggregate also refuses a second alert for the same key).
        let late: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT tenant_id, integration_id, next_run_at FROM integrations
             WHERE enabled AND next_run_at <= $1
               AND COALESCE(state->'alerted'->>'sync_late', '')
                   <> extract(epoch FROM next_run_at)::bigint::text
             ORDER BY next_run_at LIMIT 500",
        )
        .bind(now - LATE_AFTER)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        for (tenant, id, due) in &late {
            let hours = (now - *due).num_hours();
            alerts::raise(
                &self.integrations,
                &self.clock,
                *tenant,
                *id,
                alerts::SYNC_LATE,
                format!(
                    "the sync due at {} has not run for {hours} h",
                    due.to_rfc3339()
                ),
                &due.timestamp().to_string(),
            )
            .await?;
        }
        Ok(late.len())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_scheduler_wakes_at_the_next_due_time_within_its_tick() {
        let at = |ms: i64| Utc.timestamp_millis_opt(1_800_000_000_000 + ms).unwrap();
        let tick = Duration::from_secs(1);
        // Due 300 ms after now: woken then.
        assert_eq!(
            until_next(at(0), at(10), Some(at(310)), tick),
            Duration::from_millis(300)
        );
        // Due after the tick, or nothing due: the tick.
        assert_eq!(until_next(at(0), at(10), Some(at(5_000)), tick), tick);
        assert_eq!(until_next(at(0), at(10), None, tick), tick);
        // Came due during the look (not queued by it): at once.
        assert_eq!(until_next(at(0), at(10), Some(at(5)), tick), Duration::ZERO);
        // Was due at the look and is still waiting (queuing failed): the tick, no busy loop.
        assert_eq!(until_next(at(0), at(10), Some(at(0)), tick), tick);
    }
}
