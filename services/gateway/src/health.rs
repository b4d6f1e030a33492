//! Active health checks: every backend of a route with a check gets `GET <path>` every
//! `interval_ms`; `unhealthy_threshold` failures in a row take it out of rotation and
//! `healthy_threshold` successes in a row bring it back. A 2xx or 3xx is a success.
//! Each check opens its own connection through the outbound policy, as the proxy does: a
//! backend whose name now resolves into the platform's network fails without being contacted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::snapshot::BackendState;
use crate::snapshot::follow::Current;
use crate::snapshot::model::{Check, now_ms};

const TICK: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the checks of the current snapshot until `stop` resolves.
pub async fn run(snapshot: Current, stop: impl Future<Output = ()>) {
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
            tokio::spawn(probe(check.clone(), Duration::from_millis(interval)));
        }
    }
}

async fn probe(check: Check, interval: Duration) {
    let backend = check.backend;
    let timeout = interval.min(Duration::from_secs(2));
    let ok = matches!(
        tokio::time::timeout(timeout, status_of(&backend, &check.config.path)).await,
        Ok(Some(status)) if status.is_success() || status.is_redirection()
    );
    record(&backend, ok, &check.config);
    backend.checking.store(false, Ordering::Release);
}

/// `GET <path>` on a new connection, through the outbound policy like the proxy's own
/// connections: a backend whose name now resolves to a refused address fails its check
/// without being contacted.
async fn status_of(backend: &BackendState, path: &str) -> Option<http::StatusCode> {
    let tcp = match backend
        .egress
        .connect(&backend.address, CONNECT_TIMEOUT)
        .await
    {
        Ok(tcp) => tcp,
        Err(e) => {
            tracing::debug!(backend = %backend.address, error = %e, "health check could not connect");
            return None;
        }
    };
    let (mut sender, connection) = http1::handshake(TokioIo::new(tcp)).await.ok()?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = http::Request::get(path);
    if let Some(host) = &backend.host_header {
        request = request.header(http::header::HOST, host.clone());
    }
    let status = match request.body(Empty::<Bytes>::new()) {
        Ok(request) => sender.send_request(request).await.ok().map(|r| r.status()),
        Err(_) => None,
    };
    // The answer's body is not wanted: closing the connection discards it.
    driver.abort();
    status
}

fn record(backend: &Arc<BackendState>, ok: bool, config: &tenantry_proto::events::v1::HealthCheck) {
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
