//! Instance time to the `USAGE` stream: each tenant's running instances, metered as
//! `instance_hours` (`usage.<tenant>.instance_hours`, the `usage` contract), which billing
//! rolls up from the report's `quantity`.
//!
//! - **Counting.** Every interval each instance the runtime runs (any state but exited,
//!   draining included: it still takes its share of the machine) adds the time since it was
//!   last seen to its tenant. An instance is counted from the first time it is seen.
//! - **Units.** Billing's quotas count whole instance-hours, so a tenant's time is cut into
//!   whole units (an hour; `--orchestration-usage-unit-seconds`) and the rest carried to its
//!   next report. The carry (with any report not acknowledged yet) is kept in
//!   `<state dir>/usage/carry.json`, written after each round that changed it, so a restart
//!   does not lose it (a crash between an acknowledgement and that write reports the acknowledged
//!   units again; time between the last round and a stop is not counted).
//! - **Exactly once**, as the gateway's reports: `Nats-Msg-Id` = `<reporter>:<tenant>:<sequence>`
//!   (the reporter is this process, a fresh id per start, so billing's per-reporter sequence
//!   mark starts afresh too); a publish that fails is retried with the same id, and while a
//!   tenant's report waits no new one is cut (its time goes on adding up).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use prost::Message;
use tenantry_contracts::usage;
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::runtime::{Health, Observed, Runtime};

/// A tenant's time not reported yet.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Carry {
    millis: u64,
    /// Unix seconds since which it has been adding up (the report's window start).
    since: i64,
}

/// A report cut and not acknowledged yet.
#[derive(Debug, Clone)]
pub struct Pending {
    pub subject: String,
    /// `Nats-Msg-Id`: the same on every attempt.
    pub id: String,
    pub report: pb::UsageReport,
}

/// Instance time per tenant, cut into reports.
#[derive(Debug)]
pub struct Meter {
    root: String,
    /// This reporter's id (`instance_id` of its reports).
    reporter: String,
    unit: Duration,
    /// Each running instance's tenant and when it was last counted.
    seen: HashMap<Uuid, (Uuid, Instant)>,
    carry: HashMap<Uuid, Carry>,
    pending: HashMap<Uuid, Pending>,
    sequence: u64,
    /// Where the carry is kept between runs, and what was written there last.
    store: Option<(PathBuf, HashMap<Uuid, u64>)>,
}

impl Meter {
    pub fn new(root: String, reporter: String, unit: Duration) -> Self {
        Self {
            root,
            reporter,
            unit: unit.max(Duration::from_secs(1)),
            seen: HashMap::new(),
            carry: HashMap::new(),
            pending: HashMap::new(),
            sequence: 0,
            store: None,
        }
    }

    /// Keeps the carry in `path`, starting from what an earlier run left there.
    pub fn stored_in(mut self, path: PathBuf, unix: i64) -> Self {
        if let Some(dir) = path.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(path = %dir.display(), error = %e, "usage carry folder not made");
        }
        let saved: HashMap<Uuid, u64> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "unreadable usage carry; starting from none");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        for (tenant, millis) in &saved {
            self.carry.insert(
                *tenant,
                Carry {
                    millis: *millis,
                    since: unix,
                },
            );
        }
        self.store = Some((path, saved));
        self
    }

    /// Writes the carry (and the units of reports not acknowledged) when it changed.
    pub fn save(&mut self) {
        let unit = u64::try_from(self.unit.as_millis()).unwrap_or(u64::MAX);
        let mut now: HashMap<Uuid, u64> = self
            .carry
            .iter()
            .filter(|(_, c)| c.millis > 0)
            .map(|(t, c)| (*t, c.millis))
            .collect();
        for (tenant, p) in &self.pending {
            let millis = now.entry(*tenant).or_default();
            *millis = millis.saturating_add(p.report.quantity.saturating_mul(unit));
        }
        let Some((path, saved)) = self.store.as_mut() else {
            return;
        };
        if *saved == now {
            return;
        }
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec(&now)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &*path));
        match written {
            Ok(()) => *saved = now,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "usage carry not written; next round retries")
            }
        }
    }

    /// Adds the time since each running instance was last counted to its tenant.
    pub fn observe(&mut self, instances: &[Observed], now: Instant, unix: i64) {
        let mut seen = HashMap::with_capacity(instances.len());
        for i in instances {
            if matches!(i.health, Health::Exited(_)) {
                continue;
            }
            let carry = self.carry.entry(i.tenant_id).or_insert(Carry {
                millis: 0,
                since: unix,
            });
            if let Some((_, last)) = self.seen.get(&i.instance_id) {
                let millis = u64::try_from(now.duration_since(*last).as_millis()).unwrap_or(0);
                carry.millis = carry.millis.saturating_add(millis);
            }
            seen.insert(i.instance_id, (i.tenant_id, now));
        }
        self.seen = seen;
    }

    /// Cuts a report for each tenant with at least a unit of time and none waiting.
    pub fn cut(&mut self, unix: i64) {
        let unit = u64::try_from(self.unit.as_millis()).unwrap_or(u64::MAX);
        for (tenant, carry) in &mut self.carry {
            if self.pending.contains_key(tenant) || carry.millis < unit {
                continue;
            }
            let units = carry.millis / unit;
            carry.millis -= units * unit;
            // The window the time was counted over: since the tenant's first instance was
            // seen, or its last report.
            let window_start = carry.since;
            carry.since = unix;
            self.sequence += 1;
            let tenant_id = tenant.to_string();
            let report = pb::UsageReport {
                tenant_id: tenant_id.clone(),
                instance_id: self.reporter.clone(),
                window_start,
                // Whole seconds, and at least the one it was cut in.
                window_seconds: u32::try_from(unix.saturating_sub(window_start))
                    .unwrap_or(u32::MAX)
                    .max(1),
                sequence: self.sequence,
                quantity: units,
                ..Default::default()
            };
            self.pending.insert(
                *tenant,
                Pending {
                    // A UUID is always a valid subject token.
                    subject: usage::subject(&self.root, &tenant_id, usage::INSTANCE_HOURS)
                        .unwrap_or_else(|_| {
                            format!("{}.{tenant_id}.{}", self.root, usage::INSTANCE_HOURS)
                        }),
                    id: usage::message_id(&self.reporter, &tenant_id, self.sequence),
                    report,
                },
            );
        }
        // A tenant with nothing running and nothing carried is forgotten.
        let running: std::collections::HashSet<Uuid> =
            self.seen.values().map(|(t, _)| *t).collect();
        self.carry
            .retain(|t, c| c.millis > 0 || running.contains(t) || self.pending.contains_key(t));
    }

    /// Reports waiting for an acknowledgement.
    pub fn pending(&self) -> impl Iterator<Item = (&Uuid, &Pending)> {
        self.pending.iter()
    }

    /// A report was acknowledged.
    pub fn acknowledged(&mut self, tenant: &Uuid) {
        self.pending.remove(tenant);
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Meters the instances of every runtime of `runtimes` every `every` and publishes the
/// reports until `stop` resolves (and once more then).
pub async fn run(
    js: jetstream::Context,
    mut meter: Meter,
    runtimes: Vec<Arc<dyn Runtime>>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            () = &mut stop => true,
            _ = tick.tick() => false,
        };
        let unix = unix_now();
        let instances: Vec<Observed> = runtimes.iter().flat_map(|r| r.instances()).collect();
        meter.observe(&instances, Instant::now(), unix);
        meter.cut(unix);
        if js.client().connection_state() == async_nats::connection::State::Connected {
            publish(&js, &mut meter).await;
        }
        meter.save();
        if stopping {
            return;
        }
    }
}

/// Publishes what is pending; keeps what failed for the next round. One report per tenant
/// at most waits, so a round is as many publishes as tenants with instances.
async fn publish(js: &jetstream::Context, meter: &mut Meter) {
    let mut acks = Vec::new();
    for (tenant, p) in meter.pending() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", p.id.as_str());
        let sent = js
            .publish_with_headers(p.subject.clone(), headers, p.report.encode_to_vec().into())
            .await;
        acks.push((*tenant, sent));
    }
    let mut failed = 0;
    for (tenant, sent) in acks {
        let acknowledged = match sent {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if acknowledged {
            meter.acknowledged(&tenant);
        } else {
            failed += 1;
        }
    }
    if failed > 0 {
        tracing::warn!(
            reports = failed,
            "instance-hour reports not published yet; retrying"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(tenant: Uuid, id: u128, health: Health) -> Observed {
        Observed {
            instance_id: Uuid::from_u128(id),
            tenant_id: tenant,
            deployment_id: Uuid::from_u128(99),
            generation: 1,
            version: "1".into(),
            address: "127.0.0.1:1".into(),
            health,
            stopping: false,
            adopted: false,
        }
    }

    #[test]
    fn whole_hours_are_reported_and_the_rest_carried() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut m = Meter::new("usage".into(), "r1".into(), Duration::from_secs(3600));
        let t0 = Instant::now();
        let running = [
            instance(a, 10, Health::Healthy),
            instance(a, 11, Health::Starting),
            instance(b, 20, Health::Healthy),
        ];
        m.observe(&running, t0, 1_000_000);
        m.cut(1_000_000);
        assert_eq!(m.pending().count(), 0, "nothing counted yet");
        // 45 minutes: a has 1.5 instance-hours, b 0.75.
        m.observe(&running, t0 + Duration::from_secs(45 * 60), 1_002_700);
        m.cut(1_002_700);
        let reports: Vec<_> = m.pending().map(|(t, p)| (*t, p.clone())).collect();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let (tenant, p) = &reports[0];
        assert_eq!(*tenant, a);
        assert_eq!(p.report.quantity, 1);
        assert_eq!(p.subject, format!("usage.{a}.instance_hours"));
        assert_eq!(p.id, format!("r1:{a}:1"));
        assert_eq!(
            (p.report.window_start, p.report.window_seconds),
            (1_000_000, 2700)
        );
        m.acknowledged(&a);
        // Another 45 minutes, one of a's instances gone: a 0.5 + 0.75, b 1.5.
        let later = [
            instance(a, 10, Health::Healthy),
            instance(a, 11, Health::Exited("signal 9".into())),
            instance(b, 20, Health::Healthy),
        ];
        m.observe(&later, t0 + Duration::from_secs(90 * 60), 1_005_400);
        m.cut(1_005_400);
        let mut reports: Vec<_> = m
            .pending()
            .map(|(t, p)| (*t, p.report.quantity, p.report.window_start))
            .collect();
        reports.sort();
        assert_eq!(reports, [(a, 1, 1_002_700), (b, 1, 1_000_000)]);
        let mut sequences: Vec<u64> = m.pending().map(|(_, p)| p.report.sequence).collect();
        sequences.sort_unstable();
        assert_eq!(sequences, [2, 3]);
    }

    #[test]
    fn the_carry_and_unacknowledged_reports_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("tenantry-usage-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("usage-carry.json");
        let a = Uuid::from_u128(1);
        let mut m = Meter::new("usage".into(), "r1".into(), Duration::from_secs(10))
            .stored_in(path.clone(), 100);
        let t0 = Instant::now();
        let running = [instance(a, 10, Health::Healthy)];
        m.observe(&running, t0, 100);
        // 25 s: a report of 2 units waits, 5 s carried; all of it is kept.
        m.observe(&running, t0 + Duration::from_secs(25), 125);
        m.cut(125);
        m.save();
        let mut again = Meter::new("usage".into(), "r2".into(), Duration::from_secs(10))
            .stored_in(path.clone(), 200);
        again.cut(200);
        let (_, p) = again.pending().next().unwrap();
        assert_eq!(p.report.quantity, 2);
        assert_eq!(p.id, format!("r2:{a}:1"));
        // Acknowledged, the file holds the 5 s left.
        again.acknowledged(&a);
        again.save();
        let saved: HashMap<Uuid, u64> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved, HashMap::from([(a, 5_000)]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tenant_with_a_report_waiting_adds_up_until_it_is_through() {
        let a = Uuid::from_u128(1);
        let mut m = Meter::new("usage".into(), "r1".into(), Duration::from_secs(1));
        let t0 = Instant::now();
        let running = [instance(a, 10, Health::Healthy)];
        m.observe(&running, t0, 100);
        m.observe(&running, t0 + Duration::from_secs(2), 102);
        m.cut(102);
        m.observe(&running, t0 + Duration::from_secs(5), 105);
        m.cut(105);
        let (_, p) = m.pending().next().unwrap();
        assert_eq!(
            (p.report.quantity, p.report.sequence),
            (2, 1),
            "the same report"
        );
        m.acknowledged(&a);
        m.cut(105);
        let (_, p) = m.pending().next().unwrap();
        assert_eq!((p.report.quantity, p.report.sequence), (3, 2));
    }
}
