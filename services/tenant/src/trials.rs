//! Trials expire 30 days after creation unless their type changes first; this sweep emits
//! `tenant.trial_expired.v1` for each one whose time has come.

use std::pin::pin;
use std::time::Duration;

use crate::api::TenantApi;

/// Sweeps every `period` until `shutdown` resolves.
pub async fn sweep_every(api: TenantApi, period: Duration, shutdown: impl Future<Output = ()>) {
    let mut shutdown = pin!(shutdown);
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = ticker.tick() => {}
        }
        match api.expire_due_trials().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "trials expired"),
            Err(e) => tracing::warn!(error = %e, "trial sweep failed"),
        }
    }
}
