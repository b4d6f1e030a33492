//! Usage metering: requests and bytes per tenant, counted on the request path with atomic adds
//! and published to the `USAGE` stream once a second; and each tenant's requests in flight,
//! bounded by its share.
//!
//! A report is deduplicated by `Nats-Msg-Id` = `<instance>:<tenant>:<sequence>`: a publish
//! that fails is retried with the same id in the next round, so a count is never lost and
//! never counted twice. While a tenant has a report not acknowledged yet (NATS is down, say),
//! no new one is cut for it: its counts go on adding up in its atomics and leave as one report
//! once the pending one is through. So at most one report per tenant waits, however long NATS
//! is away. Billing rolls the reports up into quotas.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use prost::Message;
use tenantry_contracts::usage;
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use crate::snapshot::follow::Current;

/// Reports waiting for an acknowledgement, at most: past it, tenants' counts wait in their
/// atomics (nothing is lost, it leaves later).
pub const MAX_PENDING_REPORTS: usize = 100_000;

/// Reports published before their acknowledgements are awaited: below async-nats's limit on
/// acknowledgements outstanding (5,000).
const PUBLISH_WAVE: usize = 2_000;

/// One tenant's counts since the last report, and its requests in flight (runtime state shared
/// by every snapshot).
#[derive(Debug, Default)]
pub struct Usage {
    pub requests: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Requests of the tenant this gateway is serving, upgraded tunnels included.
    in_flight: AtomicU32,
    /// The plan's bound on `in_flight`; 0: the gateway's default.
    in_flight_share: AtomicU32,
}

/// A tenant's place among its requests in flight, given back when dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Usage);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// [`InFlight`] for a task that outlives its request (an upgraded tunnel).
#[derive(Debug)]
pub struct HeldInFlight(Arc<Usage>);

impl Drop for HeldInFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Usage {
    pub fn add_request(&self, bytes_in: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.add_bytes_in(bytes_in);
    }

    pub fn add_bytes_in(&self, n: u64) {
        if n > 0 {
            self.bytes_in.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn add_bytes_out(&self, n: u64) {
        if n > 0 {
            self.bytes_out.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The plan's share of in-flight requests (0: the gateway's default).
    pub fn set_in_flight_share(&self, share: u32) {
        self.in_flight_share.store(share, Ordering::Relaxed);
    }

    /// A place among the tenant's requests in flight, or `None` when it holds its share
    /// already (the plan's, else `default_share`), so that one tenant cannot take every slot
    /// of the gateway. An atomic add and a compare, no lock.
    pub fn enter(&self, default_share: u32) -> Option<InFlight<'_>> {
        let share = match self.in_flight_share.load(Ordering::Relaxed) {
            0 => default_share,
            plan => plan,
        };
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= share {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(InFlight(self))
    }

    /// A place for what an admitted request turns into (a tunnel), share or not: taken
    /// before the request gives its own back.
    pub fn hold(self: &Arc<Self>) -> HeldInFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        HeldInFlight(self.clone())
    }

    fn take(&self) -> (u64, u64, u64) {
        (
            self.requests.swap(0, Ordering::Relaxed),
            self.bytes_in.swap(0, Ordering::Relaxed),
            self.bytes_out.swap(0, Ordering::Relaxed),
        )
    }
}

/// A report cut and not acknowledged yet.
struct Pending {
    subject: String,
    /// `Nats-Msg-Id`: the same on every attempt.
    id: String,
    report: pb::UsageReport,
}

/// Publishes every tenant's counts each `every` until `stop` resolves (and once more then).
pub async fn run(
    js: jetstream::Context,
    root: String,
    instance: String,
    snapshot: Current,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut pending: HashMap<Uuid, Pending> = HashMap::new();
    // Since when a tenant's counts have been held back behind its pending report.
    let mut held_since: HashMap<Uuid, i64> = HashMap::new();
    let mut sequence = 0u64;
    let waiting = metrics::gauge!("tenantry_gateway_usage_reports_pending");
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every_seconds = i64::try_from(every.as_secs().max(1)).unwrap_or(1);
    loop {
        let stopping = tokio::select! {
            () = &mut stop => true,
            _ = tick.tick() => false,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        for tenant in snapshot.load().tenants.values() {
            let id = tenant.tenant_id;
            if pending.contains_key(&id) || pending.len() >= MAX_PENDING_REPORTS {
                // Coalesced: the counts stay in the tenant's atomics for its next report.
                held_since.entry(id).or_insert(now);
                continue;
            }
            let (requests, bytes_in, bytes_out) = tenant.usage.take();
            if requests == 0 && bytes_in == 0 && bytes_out == 0 {
                held_since.remove(&id);
                continue;
            }
            // The window the counts were taken over: the last round, or from the round before
            // they were first held back.
            let window_start = held_since.remove(&id).unwrap_or(now) - every_seconds;
            sequence += 1;
            let report = pb::UsageReport {
                tenant_id: id.to_string(),
                instance_id: instance.clone(),
                window_start,
                window_seconds: u32::try_from(now - window_start).unwrap_or(u32::MAX),
                requests,
                bytes_in,
                bytes_out,
                sequence,
                quantity: 0,
            };
            pending.insert(
                id,
                Pending {
                    // A UUID is always a valid subject token.
                    subject: usage::subject(&root, &id.to_string(), usage::HTTP)
                        .unwrap_or_else(|_| format!("{root}.{id}.{}", usage::HTTP)),
                    id: usage::message_id(&instance, &id.to_string(), sequence),
                    report,
                },
            );
        }
        // While NATS is away a publish would only wait out its acknowledgement's timeout.
        if js.client().connection_state() == async_nats::connection::State::Connected {
            publish(&js, &mut pending).await;
        }
        waiting.set(pending.len() as f64);
        if stopping {
            return;
        }
    }
}

/// Publishes what is pending, pipelined; keeps what failed for the next round.
async fn publish(js: &jetstream::Context, pending: &mut HashMap<Uuid, Pending>) {
    let tenants: Vec<Uuid> = pending.keys().copied().collect();
    // Pipelined, a wave at a time: async-nats holds a permit per acknowledgement not yet
    // awaited (5,000 by default), and a publish waits for one: sending every report before
    // awaiting any would wait forever past that many tenants.
    for wave in tenants.chunks(PUBLISH_WAVE) {
        let mut acks = Vec::with_capacity(wave.len());
        for tenant in wave {
            let Some(report) = pending.get(tenant) else {
                continue;
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", report.id.as_str());
            let sent = js
                .publish_with_headers(
                    report.subject.clone(),
                    headers,
                    report.report.encode_to_vec().into(),
                )
                .await;
            acks.push((*tenant, sent));
        }
        for (tenant, sent) in acks {
            let acknowledged = match sent {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            };
            if acknowledged {
                pending.remove(&tenant);
            }
        }
    }
    if !pending.is_empty() {
        tracing::warn!(
            reports = pending.len(),
            "usage reports not published yet; retrying"
        );
    }
}
