//! The roll-up: `USAGE` reports added up per tenant, meter and hour and per quota window
//! (the calendar month; the day for API calls),
//! exactly once, and the quota thresholds the new totals cross.
//!
//! Exactly once: the runner commits each batch with its checkpoint (a redelivered batch is
//! skipped), JetStream drops a re-published report within its deduplication window, and a
//! report at or below the last sequence counted for its reporter, tenant, meter and window (a
//! duplicate published later than that) is dropped here. That mark is kept in the window's
//! total row itself (`usage_periods.marks`), so it costs no row of its own.
//!
//! A batch costs at most three statements whatever its size: the marks of windows not seen
//! before (the ones seen are kept in memory), then the hourly totals, and the window totals
//! with their marks and the thresholds crossed, found and recorded in the same statement that
//! adds to the window totals. Reports are added up in memory first, so a batch writes one
//! row per tenant, meter and window however many of the tenant's reports it holds.

use std::collections::{HashMap, HashSet};
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
/// holds, the fewer rows a report costs: what a batch costs Postgres grows with the tenants
/// in it, not with its reports. Up to three batches are in memory while catching up (one
/// applied, one waiting, one being decoded), about 250 bytes a report: 150 MB at most.
pub const BATCH: usize = 200_000;

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

/// A window's total row (tenant, meter, window start) and a reporter in it (`<meter as
/// reported>/<reporter>`, the key in the row's `marks`): a reporter's sequence runs per tenant
/// and meter, and a report's mark lives in the row of its first meter's window.
type MarkKey = (Row, String);
type Row = (Uuid, &'static str, DateTime<Utc>);

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
        let mut unknown: HashSet<Row> = HashSet::new();
        {
            let staged = self.staged.lock().await;
            let known = self.known.lock().await;
            for r in reports.iter().filter(|r| r.sequence > 0) {
                let key = (r.mark_row, r.mark.clone());
                if marks.contains_key(&key) {
                    continue;
                }
                match staged.get(&key).or_else(|| known.get(&key)) {
                    Some(last) => {
                        marks.insert(key, *last);
                    }
                    None => {
                        unknown.insert(r.mark_row);
                        marks.insert(key, 0);
                    }
                }
            }
        }
        if unknown.is_empty() {
            return Ok(marks);
        }
        let (mut t, mut m, mut p) = (Vec::new(), Vec::new(), Vec::new());
        for (tenant, meter, period) in &unknown {
            t.push(*tenant);
            m.push(*meter);
            p.push(*period);
        }
        let rows: Vec<(Uuid, String, DateTime<Utc>, String, String)> = sqlx::query_as(
            "SELECT u.tenant_id, u.meter, u.period_start, m.key, m.value
             FROM usage_periods u
             JOIN UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS k(tenant_id, meter, period_start)
               USING (tenant_id, meter, period_start)
             CROSS JOIN jsonb_each_text(u.marks) AS m(key, value)",
        )
        .bind(&t)
        .bind(&m)
        .bind(&p)
        .fetch_all(&mut *tx)
        .await?;
        for (tenant, meter, period, key, value) in rows {
            if let Some(meter) = known_meter(&meter) {
                marks.insert(((tenant, meter, period), key), value.parse().unwrap_or(0));
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
    /// 0: a reporter without sequences (counted, never deduplicated here).
    sequence: u64,
    /// Where the report's mark lives, and its key there.
    mark_row: Row,
    mark: String,
    hour: DateTime<Utc>,
    /// Each meter's quantity and the start of its quota window.
    counts: Vec<(&'static str, u64, DateTime<Utc>)>,
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
        let at = Utc
            .timestamp_opt(report.window_start, 0)
            .single()
            .ok_or_else(|| corrupt("bad window start"))?;
        let counts: Vec<_> = counts
            .into_iter()
            .map(|(meter, quantity)| (meter, quantity, Window::of(meter).start(at)))
            .collect();
        let (first, _, window) = counts[0];
        Ok(Self {
            position,
            report: Some(Report {
                tenant,
                sequence: report.sequence,
                mark_row: (tenant, first, window),
                mark: format!("{reported}/{}", report.instance_id),
                hour: Utc
                    .timestamp_opt(report.window_start.div_euclid(3600) * 3600, 0)
                    .single()
                    .unwrap_or(at),
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
        let mut hourly: HashMap<(Uuid, &'static str, DateTime<Utc>), u64> = HashMap::new();
        let mut periods: HashMap<Row, u64> = HashMap::new();
        let mut advanced: HashMap<MarkKey, u64> = HashMap::new();
        for r in &reports {
            if r.sequence > 0 {
                let key = (r.mark_row, r.mark.clone());
                let last = marks.get(&key).copied().unwrap_or(0);
                if r.sequence <= last {
                    continue; // counted before
                }
                marks.insert(key.clone(), r.sequence);
                advanced.insert(key, r.sequence);
                // The mark is written with its row, even when the report adds nothing to it.
                periods.entry(r.mark_row).or_default();
            }
            for (meter, quantity, window) in r.counts.iter().filter(|(_, q, _)| *q > 0) {
                // API calls are the requests again, counted per day: not a line of their own
                // in the hourly report.
                if Window::of(meter) == Window::Month {
                    *hourly.entry((r.tenant, meter, r.hour)).or_default() += quantity;
                }
                *periods.entry((r.tenant, meter, *window)).or_default() += quantity;
            }
        }
        write_hourly(tx, &hourly).await?;
        if write_periods(tx, &periods, &advanced).await? {
            self.pending.store(true, Ordering::Relaxed);
        }
        self.staged.lock().await.extend(advanced);
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
    hourly: &HashMap<(Uuid, &'static str, DateTime<Utc>), u64>,
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
        h.push(*hour);
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

/// Adds to the window totals (monthly; daily for API calls) and their rows' marks, and
/// records, in the same statement, every threshold the new totals reach (once per tenant,
/// meter, window, percent and quota). Returns whether any new crossing was recorded.
async fn write_periods(
    tx: &mut PgConnection,
    periods: &HashMap<Row, u64>,
    advanced: &HashMap<MarkKey, u64>,
) -> Result<bool, sqlx::Error> {
    if periods.is_empty() {
        return Ok(false);
    }
    let mut marks: HashMap<Row, serde_json::Map<String, serde_json::Value>> = HashMap::new();
    for ((row, key), sequence) in advanced {
        marks
            .entry(*row)
            .or_default()
            .insert(key.clone(), (*sequence).into());
    }
    let mut t = Vec::with_capacity(periods.len());
    let mut m = Vec::with_capacity(periods.len());
    let mut p = Vec::with_capacity(periods.len());
    let mut q = Vec::with_capacity(periods.len());
    let mut j: Vec<Option<String>> = Vec::with_capacity(periods.len());
    for (row, quantity) in periods {
        let (tenant, meter, period) = *row;
        t.push(tenant);
        m.push(meter);
        p.push(period);
        q.push(int(*quantity));
        j.push(
            marks
                .remove(row)
                .map(|m| serde_json::Value::Object(m).to_string()),
        );
    }
    let thresholds: Vec<i32> = THRESHOLDS.iter().map(|p| *p as i32).collect();
    let crossed: Option<(i64,)> = sqlx::query_as(
        "WITH totals AS (
             INSERT INTO usage_periods (tenant_id, meter, period_start, quantity, marks)
             SELECT t, m, p, q, coalesce(j::jsonb, '{}')
             FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::bigint[], $6::text[])
                  AS u(t, m, p, q, j)
             ON CONFLICT (tenant_id, meter, period_start)
             DO UPDATE SET quantity = usage_periods.quantity + EXCLUDED.quantity,
                           marks = CASE WHEN EXCLUDED.marks = '{}' THEN usage_periods.marks
                                        ELSE usage_periods.marks || EXCLUDED.marks END
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
    .bind(&j)
    .fetch_optional(tx)
    .await?;
    Ok(crossed.is_some_and(|(n,)| n > 0))
}
