//! Active health checks: every backend of a route with a check gets `GET <path>` every
//! `interval_ms`; `unhealthy_threshold` failures in a row take it out of rotation and
//! `healthy_threshold` successes in a row bring it back. A 2xx or 3xx is a success.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::snapshot::follow::Current;
use crate::snapshot::model::{Check, now_ms};

const TICK: Duration = Duration::from_millis(50);

/// Runs the checks of the current snapshot until `stop` resolves.
pub async fn run(snapshot: Current, stop: impl Future<Output = ()>) {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let mut stop = std::pin::pin!(stop);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let checks = snapshot.load().checks.clone();
        let now = now_ms();
        for check in checks.iter() {
            let backend = &check.backend;
            if backend.check_due_ms.load(Ordering::Relaxed) > now
                || backend.checking.swap(true, Ordering::AcqRel)
            {
                continue;
            }
            let interval = u64::from(check.config.interval_ms.max(100));
            backend
                .check_due_ms
                .store(now + interval, Ordering::Relaxed);
            tokio::spawn(probe(
                client.clone(),
                check.clone(),
                Duration::from_millis(interval),
            ));
        }
    }
}

async fn probe(client: Client<HttpConnector, Empty<Bytes>>, check: Check, interval: Duration) {
    let backend = check.backend;
    let uri = format!("http://{}{}", backend.address, check.config.path);
    let ok = match uri.parse::<http::Uri>() {
        Ok(uri) => {
            let timeout = interval.min(Duration::from_secs(2));
            matches!(
                tokio::time::timeout(timeout, client.get(uri)).await,
                Ok(Ok(r)) if r.status().is_success() || r.status().is_redirection()
            )
        }
        Err(_) => false,
    };
    record(&backend, ok, &check.config);
    backend.checking.store(false, Ordering::Release);
}

fn record(
    backend: &Arc<crate::snapshot::BackendState>,
    ok: bool,
    config: &tenantry_proto::events::v1::HealthCheck,
) {
    let streak = backend.check_streak.load(Ordering::Relaxed);
    let streak = if ok {
        streak.max(0) + 1
    } else {
        streak.min(0) - 1
    };
    backend.check_streak.store(streak, Ordering::Relaxed);
    let healthy = backend.healthy.load(Ordering::Relaxed);
    let up_after = i32::try_from(config.healthy_threshold.max(1)).unwrap_or(i32::MAX);
    let down_after = i32::try_from(config.unhealthy_threshold.max(1)).unwrap_or(i32::MAX);
    if !healthy && streak >= up_after {
        backend.healthy.store(true, Ordering::Relaxed);
        tracing::info!(backend = %backend.address, "backend healthy again");
    } else if healthy && -streak >= down_after {
        backend.healthy.store(false, Ordering::Relaxed);
        tracing::warn!(backend = %backend.address, "backend failed its health check");
    }
}
