//! Usage metering: requests and bytes per tenant, counted on the request path with atomic adds
//! and published to the `USAGE` stream once a second.
//!
//! A report is deduplicated by `Nats-Msg-Id` = `<instance>:<window start>:<tenant>`: a publish
//! that fails is retried with the same id in the next round, so a count is never lost and
//! never counted twice. Billing rolls the reports up into quotas.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use prost::Message;
use tenantry_proto::events::v1 as pb;

use crate::snapshot::follow::Current;

/// One tenant's counts since the last report (runtime state shared by every snapshot).
#[derive(Debug, Default)]
pub struct Usage {
    pub requests: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Usage {
    pub fn add_request(&self, bytes_in: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if bytes_in > 0 {
            self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        }
    }

    pub fn add_bytes_out(&self, n: u64) {
        if n > 0 {
            self.bytes_out.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn take(&self) -> (u64, u64, u64) {
        (
            self.requests.swap(0, Ordering::Relaxed),
            self.bytes_in.swap(0, Ordering::Relaxed),
            self.bytes_out.swap(0, Ordering::Relaxed),
        )
    }
}

/// Publishes every tenant's counts each `every` until `stop` resolves (and once more then),
/// and brings the routes' metrics (latency histogram, bytes, backends' states) up to date.
pub async fn run(
    js: jetstream::Context,
    root: String,
    instance: String,
    snapshot: Current,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut pending: VecDeque<(String, pb::UsageReport)> = VecDeque::new();
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let window_seconds = u32::try_from(every.as_secs().max(1)).unwrap_or(1);
    loop {
        let stopping = tokio::select! {
            () = &mut stop => true,
            _ = tick.tick() => false,
        };
        let window_start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        for tenant in snapshot.load().tenants.values() {
            // The latency histograms are published on the same beat (see `RouteMetrics`).
            for route in &tenant.routes {
                if let Some(metrics) = route.metrics_if_used() {
                    metrics.publish(&route.backends);
                }
            }
            let (requests, bytes_in, bytes_out) = tenant.usage.take();
            if requests == 0 && bytes_in == 0 && bytes_out == 0 {
                continue;
            }
            let report = pb::UsageReport {
                tenant_id: tenant.tenant_id.to_string(),
                instance_id: instance.clone(),
                window_start,
                window_seconds,
                requests,
                bytes_in,
                bytes_out,
            };
            pending.push_back((format!("{root}.{}.http", tenant.tenant_id), report));
        }
        publish(&js, &instance, &mut pending).await;
        if stopping {
            return;
        }
    }
}

/// Publishes what is pending, pipelined; keeps what failed for the next round.
async fn publish(
    js: &jetstream::Context,
    instance: &str,
    pending: &mut VecDeque<(String, pb::UsageReport)>,
) {
    let mut acks = Vec::with_capacity(pending.len());
    for (subject, report) in pending.drain(..) {
        let id = format!("{instance}:{}:{}", report.window_start, report.tenant_id);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let sent = js
            .publish_with_headers(subject.clone(), headers, report.encode_to_vec().into())
            .await;
        acks.push((subject, report, sent));
    }
    for (subject, report, sent) in acks {
        let ok = match sent {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if !ok {
            pending.push_back((subject, report));
        }
    }
    if !pending.is_empty() {
        tracing::warn!(
            reports = pending.len(),
            "usage reports not published yet; retrying"
        );
    }
}
