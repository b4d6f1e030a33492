//! The roll-up: `USAGE` reports added up per tenant, meter and hour and per quota window
//! (the calendar month; the day for API calls),
//! exactly once, and the quota thresholds the new totals cross.
//!
//! Exactly once: the runner commits each batch with its checkpoint (a redelivered batch is
//! skipped), JetStream drops a re-published report within its deduplication window, and a
//! report at or below the last sequence counted for its reporter, tenant and meter (a
//! duplicate published later than that) is dropped here.
//!
//! A batch costs at most five statements whatever its size: the marks of reporters not seen
//! before (the ones seen are kept in memory), then the hourly and window totals and the marks
//! written with `UNNEST`, and the thresholds crossed found and recorded in the same statement
//! that adds to the window totals. Reports are added up in memory first, so a batch writes one
//! row per tenant and meter however many of the tenant's reports it holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use prost::Message;
use sqlx::PgConnection;
use tenantry_contracts::billing::{API_CALLS, BYTES, REQUESTS};
use tenantry_contracts::usage::{self, UsageReport};
use tenantry_eventstore::{Projection, ProjectionError, StoreError, StreamKind, StreamMessage};
use tenantry_kit::db::{Scope, set_scope};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use crate::domain::period::Window;
use crate::domain::subscription::THRESHOLDS;

pub const NAME: &str = "billing_usage";

/// Reports applied in one transaction while catching up (live, a batch is what has arrived).
/// A batch adds up a tenant's reports before writing, so the more windows of each tenant one
/// holds, the fewer rows a report costs. Two batches are in memory at a time (one applied, the
/// next decoded), about 250 bytes a report.
pub const BATCH: usize = 100_000;

pub struct UsageRollup {
    /// Woken when a batch recorded crossings, so they reach the log at once.
    pub crossed: Arc<Notify>,
    pending: AtomicBool,
    /// The reporters' marks as committed, as far as read: the roll-up is their only writer
    /// while it holds the projection's lock, so a mark read once needs no second read. Cleared
    /// when a term starts (another replica may have led meanwhile) and past `MARKS_KEPT`.
    known: Mutex<HashMap<MarkKey, u64>>,
    /// The marks the open transaction has advanced: known once it commits.
    staged: Mutex<HashMap<MarkKey, u64>>,
}

/// A reporter (gateway replica, sync worker, …), the tenant it counted for, and the meter as
/// reported: a reporter's sequence runs per tenant and meter.
type MarkKey = (Uuid, String, &'static str);

/// Marks kept in memory at most (about 100 bytes each); past it they are read again.
const MARKS_KEPT: usize = 1_000_000;

impl UsageRollup {
    pub fn new(crossed: Arc<Notify>) -> Self {
        Self {
            crossed,
            pending: AtomicBool::new(false),
            known: Mutex::default(),
            staged: Mutex::default(),
        }
    }

    /// The last sequence counted for each key of `reports` with a sequence: from this
    /// transaction's own advances, then the committed marks known, then Postgres (which,
    /// inside the transaction, also sees what earlier applies of it wrote).
    async fn marks(
        &self,
        tx: &mut PgConnection,
        reports: &[&Report],
    ) -> Result<HashMap<MarkKey, u64>, sqlx::Error> {
        let mut marks = HashMap::new();
        let (mut t, mut i, mut m) = (Vec::new(), Vec::new(), Vec::new());
        {
            let staged = self.staged.lock().await;
            let known = self.known.lock().await;
            for r in reports.iter().filter(|r| r.sequence > 0) {
                let key = (r.tenant, r.instance.clone(), r.reported);
                if marks.contains_key(&key) {
                    continue;
                }
                match staged.get(&key).or_else(|| known.get(&key)) {
                    Some(last) => {
                        marks.insert(key, *last);
                    }
                    None => {
                        t.push(r.tenant);
                        i.push(r.instance.clone());
                        m.push(r.reported);
                        marks.insert(key, 0);
                    }
                }
            }
        }
        if t.is_empty() {
            return Ok(marks);
        }
        let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
            "SELECT m.tenant_id, m.instance_id, m.meter, m.sequence FROM usage_marks m
             JOIN UNNEST($1::uuid[], $2::text[], $3::text[]) AS k(tenant_id, instance_id, meter)
               USING (tenant_id, instance_id, meter)",
        )
        .bind(&t)
        .bind(&i)
        .bind(&m)
        .fetch_all(&mut *tx)
        .await?;
        for (t, i, m, s) in rows {
            if let Some(m) = known_meter(&m) {
                marks.insert((t, i, m), u64::try_from(s).unwrap_or(0));
            }
        }
        Ok(marks)
    }
}

/// One report, decoded by the runner as it arrives (while the batch before it is applied):
/// who counted, its place in the reporter's sequence, and what it adds. `None`: a meter
/// billing does not know yet (skipped, not failed).
pub struct UsageMessage {
    position: u64,
    report: Option<Report>,
}

struct Report {
    tenant: Uuid,
    instance: String,
    /// The meter as reported (`http`, `records`, …): a reporter's sequence runs per meter.
    reported: &'static str,
    /// 0: a reporter without sequences (counted, never deduplicated here).
    sequence: u64,
    window_start: i64,
    counts: Vec<(&'static str, u64)>,
}

impl StreamMessage for UsageMessage {
    /// A report that does not decode, or whose subject names another tenant than its body,
    /// is never counted (quarantined by the runner).
    fn decode(
        position: u64,
        subject: &str,
        payload: &[u8],
        _traceparent: Option<String>,
    ) -> Result<Self, StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("usage report {position}: {why}"));
        let report = UsageReport::decode(payload).map_err(|e| corrupt(&e.to_string()))?;
        let mut tokens = subject.rsplit('.');
        let meter = tokens.next().unwrap_or_default();
        if tokens.next() != Some(report.tenant_id.as_str()) {
            return Err(corrupt("its subject names another tenant"));
        }
        let tenant = Uuid::try_parse(&report.tenant_id).map_err(|_| corrupt("bad tenant id"))?;
        let (reported, counts) = if meter == usage::HTTP {
            (
                usage::HTTP,
                vec![
                    (REQUESTS, report.requests),
                    (BYTES, report.bytes_in.saturating_add(report.bytes_out)),
                    (API_CALLS, report.requests),
                ],
            )
        } else if let Some(known) = known_meter(meter) {
            (known, vec![(known, report.quantity)])
        } else {
            return Ok(Self {
                position,
                report: None,
            });
        };
        Ok(Self {
            position,
            report: Some(Report {
                tenant,
                instance: report.instance_id,
                reported,
                sequence: report.sequence,
                window_start: report.window_start,
                counts,
            }),
        })
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// The meter as billing names it, if billing meters it (or the gateway's `http` reports).
fn known_meter(meter: &str) -> Option<&'static str> {
    if meter == usage::HTTP {
        return Some(usage::HTTP);
    }
    crate::domain::plan::METERS
        .iter()
        .find(|k| **k == meter)
        .copied()
}

impl Projection for UsageRollup {
    type Message = UsageMessage;
    const STREAM: StreamKind = StreamKind::Usage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        format!("{root}.>")
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[UsageMessage],
    ) -> Result<(), ProjectionError> {
        set_scope(tx, Scope::Platform).await?;
        let reports: Vec<&Report> = messages.iter().filter_map(|m| m.report.as_ref()).collect();

        let mut marks = self.marks(tx, &reports).await?;
        let mut hourly: HashMap<(Uuid, &'static str, i64), u64> = HashMap::new();
        let mut periods: HashMap<(Uuid, &'static str, DateTime<Utc>), u64> = HashMap::new();
        let mut advanced: HashMap<MarkKey, u64> = HashMap::new();
        for r in &reports {
            if r.sequence > 0 {
                let key = (r.tenant, r.instance.clone(), r.reported);
                let last = marks.get(&key).copied().unwrap_or(0);
                if r.sequence <= last {
                    continue; // counted before
                }
                marks.insert(key.clone(), r.sequence);
                advanced.insert(key, r.sequence);
            }
            let hour = r.window_start.div_euclid(3600) * 3600;
            let at = Utc
                .timestamp_opt(r.window_start, 0)
                .single()
                .unwrap_or_default();
            for (meter, quantity) in r.counts.iter().filter(|(_, q)| *q > 0) {
                let window = Window::of(meter);
                // API calls are the requests again, counted per day: not a line of their own
                // in the hourly report.
                if window == Window::Month {
                    *hourly.entry((r.tenant, meter, hour)).or_default() += quantity;
                }
                *periods
                    .entry((r.tenant, meter, window.start(at)))
                    .or_default() += quantity;
            }
        }
        write_hourly(tx, &hourly).await?;
        write_marks(tx, &advanced).await?;
        self.staged.lock().await.extend(advanced);
        if write_periods(tx, &periods).await? {
            self.pending.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn committed(&self) {
        let staged = std::mem::take(&mut *self.staged.lock().await);
        {
            let mut known = self.known.lock().await;
            if known.len() + staged.len() > MARKS_KEPT {
                known.clear();
            }
            known.extend(staged);
        }
        if self.pending.swap(false, Ordering::Relaxed) {
            self.crossed.notify_one();
        }
    }

    async fn reset(&self) {
        self.pending.store(false, Ordering::Relaxed);
        self.known.lock().await.clear();
        self.staged.lock().await.clear();
    }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn write_hourly(
    tx: &mut PgConnection,
    hourly: &HashMap<(Uuid, &'static str, i64), u64>,
) -> Result<(), sqlx::Error> {
    if hourly.is_empty() {
        return Ok(());
    }
    let mut t = Vec::with_capacity(hourly.len());
    let mut m = Vec::with_capacity(hourly.len());
    let mut h = Vec::with_capacity(hourly.len());
    let mut q = Vec::with_capacity(hourly.len());
    for ((tenant, meter, hour), quantity) in hourly {
        t.push(*tenant);
        m.push(*meter);
        h.push(Utc.timestamp_opt(*hour, 0).single().unwrap_or_default());
        q.push(int(*quantity));
    }
    sqlx::query(
        "INSERT INTO usage_hourly (tenant_id, meter, hour, quantity)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[])
         ON CONFLICT (tenant_id, meter, hour)
         DO UPDATE SET quantity = usage_hourly.quantity + EXCLUDED.quantity",
    )
    .bind(&t)
    .bind(&m)
    .bind(&h)
    .bind(&q)
    .execute(tx)
    .await?;
    Ok(())
}

async fn write_marks(
    tx: &mut PgConnection,
    marks: &HashMap<MarkKey, u64>,
) -> Result<(), sqlx::Error> {
    if marks.is_empty() {
        return Ok(());
    }
    let mut t = Vec::with_capacity(marks.len());
    let mut i = Vec::with_capacity(marks.len());
    let mut m = Vec::with_capacity(marks.len());
    let mut s = Vec::with_capacity(marks.len());
    for ((tenant, instance, meter), sequence) in marks {
        t.push(*tenant);
        i.push(instance.as_str());
        m.push(*meter);
        s.push(int(*sequence));
    }
    sqlx::query(
        "INSERT INTO usage_marks (tenant_id, instance_id, meter, sequence)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[])
         ON CONFLICT (tenant_id, instance_id, meter)
         DO UPDATE SET sequence = GREATEST(usage_marks.sequence, EXCLUDED.sequence)",
    )
    .bind(&t)
    .bind(&i)
    .bind(&m)
    .bind(&s)
    .execute(tx)
    .await?;
    Ok(())
}

/// Adds to the window totals (monthly; daily for API calls) and records, in the same
/// statement, every threshold the new totals reach (once per tenant, meter, window, percent
/// and quota). Returns whether any
/// new crossing was recorded.
async fn write_periods(
    tx: &mut PgConnection,
    periods: &HashMap<(Uuid, &'static str, DateTime<Utc>), u64>,
) -> Result<bool, sqlx::Error> {
    if periods.is_empty() {
        return Ok(false);
    }
    let mut t = Vec::with_capacity(periods.len());
    let mut m = Vec::with_capacity(periods.len());
    let mut p = Vec::with_capacity(periods.len());
    let mut q = Vec::with_capacity(periods.len());
    for ((tenant, meter, period), quantity) in periods {
        t.push(*tenant);
        m.push(*meter);
        p.push(*period);
        q.push(int(*quantity));
    }
    let thresholds: Vec<i32> = THRESHOLDS.iter().map(|p| *p as i32).collect();
    let crossed: Option<(i64,)> = sqlx::query_as(
        "WITH totals AS (
             INSERT INTO usage_periods (tenant_id, meter, period_start, quantity)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[])
             ON CONFLICT (tenant_id, meter, period_start)
             DO UPDATE SET quantity = usage_periods.quantity + EXCLUDED.quantity
             RETURNING tenant_id, meter, period_start, quantity
         ), crossed AS (
             INSERT INTO quota_outbox (tenant_id, meter, period_start, percent, used, quota)
             SELECT t.tenant_id, t.meter, t.period_start, p.percent, t.quantity, q.quota
             FROM totals t
             JOIN quotas q USING (tenant_id, meter)
             CROSS JOIN UNNEST($5::int[]) AS p(percent)
             WHERE t.quantity::numeric * 100 >= q.quota::numeric * p.percent
             ON CONFLICT DO NOTHING
             RETURNING 1
         )
         SELECT count(*) FROM crossed",
    )
    .bind(&t)
    .bind(&m)
    .bind(&p)
    .bind(&q)
    .bind(&thresholds)
    .fetch_optional(tx)
    .await?;
    Ok(crossed.is_some_and(|(n,)| n > 0))
}
