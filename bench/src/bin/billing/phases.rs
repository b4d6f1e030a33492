//! Where a period close's time goes: what closing one subscription costs (load its aggregate
//! from the log, read its period's usage, append the close), each step timed, over every due
//! subscription at a chosen concurrency. The steps are those `Periods::close` took one
//! subscription at a time before `close_due` read a page's usage in one statement; they are
//! kept as they were, as the profile that led to it. A profile, not the figure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tenantry_bench::{ms, percentile};
use tenantry_billing::domain::SubscriptionCommand;
use tenantry_billing::domain::subscription;
use tenantry_billing::periods::Periods;
use tenantry_billing::projection::queries;
use tenantry_eventstore::CommandMeta;
use uuid::Uuid;

/// One close, step by step.
struct Steps {
    load: Duration,
    usage: Duration,
    append: Duration,
}

/// Closes the periods of `due` as `Periods::close` does, `concurrency` at a time, and prints
/// each step's latency; returns how many were closed.
pub async fn close_all(
    periods: &Periods,
    due: Vec<Uuid>,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let now = periods.clock.now();
    let started = Instant::now();
    let results: Vec<anyhow::Result<Option<Steps>>> = futures::stream::iter(due)
        .map(|tenant| async move {
            let address = subscription::address(tenant)?;
            let t0 = Instant::now();
            let (sub, _) = periods.subscriptions.load(&address).await?;
            let t1 = Instant::now();
            if sub.period_end > now || sub.price.is_none() {
                return Ok(None);
            }
            let usage: BTreeMap<String, u64> =
                queries::usage_between(&periods.pool, tenant, sub.period_start, sub.period_end)
                    .await?
                    .into_iter()
                    .collect();
            let t2 = Instant::now();
            let id = format!("close-{tenant}-{}", sub.period_end.timestamp());
            periods
                .subscriptions
                .execute(
                    &address,
                    &SubscriptionCommand::ClosePeriod {
                        next: None,
                        usage,
                        now,
                    },
                    &CommandMeta {
                        correlation_id: id.clone(),
                        command_id: id,
                        actor: "system:billing".into(),
                        occurred_at: now,
                        traceparent: None,
                        fingerprint: None,
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("close {tenant}: {e}"))?;
            Ok(Some(Steps {
                load: t1 - t0,
                usage: t2 - t1,
                append: t2.elapsed(),
            }))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let mut steps = Vec::with_capacity(results.len());
    for r in results {
        if let Some(s) = r? {
            steps.push(s);
        }
    }
    let line = |name: &str, pick: fn(&Steps) -> Duration| {
        let mut d: Vec<Duration> = steps.iter().map(pick).collect();
        d.sort();
        let mean = d.iter().sum::<Duration>() / d.len().max(1) as u32;
        println!(
            "    {name:<34} mean {:>6.2} ms, p50 {:>6.2} ms, p99 {:>6.2} ms",
            ms(mean),
            ms(percentile(&d, 50.0)),
            ms(percentile(&d, 99.0))
        );
    };
    println!(
        "  phases, {concurrency} at a time: {} closed in {secs:.1} s ({:.0}/s)",
        steps.len(),
        steps.len() as f64 / secs
    );
    line("load (direct gets from the log)", |s| s.load);
    line("usage query (a transaction)", |s| s.usage);
    line("append (decide + publish + ack)", |s| s.append);
    Ok(steps.len())
}
