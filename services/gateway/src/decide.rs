//! The per-request decision, pure and synchronous: host → tenant → status → route → quota →
//! rate limits (tenant, route, API key) → backend, from one snapshot. No lock, no I/O, no
//! allocation (but for an API key's digest when the plan limits keys).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;

use crate::balance;
use crate::limit::{Decision, Gcra, Mode};
use crate::snapshot::model::{Backend, RouteEntry, Snapshot, TenantEntry, TenantStatus};

/// Where a request goes.
#[derive(Debug)]
pub struct Forward<'a> {
    pub tenant: &'a Arc<TenantEntry>,
    pub route: &'a Arc<RouteEntry>,
    pub backend: &'a Backend,
    /// The limiter with the fewest requests left, and how many: for the response headers.
    pub tightest: Option<(&'a Arc<Gcra>, u32)>,
    /// Limiters only the cluster can decide (strict mode, or not synced yet): the proxy asks
    /// Redis before forwarding.
    pub ask: [Option<&'a Arc<Gcra>>; 3],
    /// Limiters that admitted the request here: to give back if the cluster refuses it.
    pub admitted: [Option<&'a Arc<Gcra>>; 3],
}

/// Why the gateway answers a request itself.
#[derive(Debug)]
pub enum Refusal<'a> {
    UnknownHost,
    Suspended(&'a TenantEntry),
    Decommissioned(&'a TenantEntry),
    NoRoute(&'a TenantEntry),
    QuotaExceeded(&'a TenantEntry, &'a RouteEntry),
    RateLimited(&'a TenantEntry, &'a RouteEntry, &'a Gcra, Duration),
    NoHealthyBackend(&'a TenantEntry),
}

/// Decides a request for `host` (lower-case, no port) and `path` arriving at `now`, with rate
/// limits decided as `mode` says.
pub fn decide<'a>(
    snapshot: &'a Snapshot,
    host: &str,
    path: &str,
    headers: &HeaderMap,
    mode: Mode,
    now: Instant,
) -> Result<Forward<'a>, Refusal<'a>> {
    let slot = snapshot.host(host).ok_or(Refusal::UnknownHost)?;
    slot.prefetch();
    let tenant = &slot.tenant;
    match slot.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => return Err(Refusal::Suspended(tenant)),
        TenantStatus::Decommissioning => return Err(Refusal::Decommissioned(tenant)),
    }
    let route = slot.route(host, path).ok_or(Refusal::NoRoute(tenant))?;
    if slot.blocked_by_quota {
        return Err(Refusal::QuotaExceeded(tenant, route));
    }
    let key_limiter = if slot.plain {
        None
    } else {
        tenant
            .api_keys
            .as_ref()
            .and_then(|keys| keys.limiter_for(headers))
    };
    let limiters = [Some(&slot.limiter), route.limiter.as_ref(), key_limiter];
    let Checked {
        tightest,
        ask,
        admitted,
    } = check_all(&limiters, mode, now).map_err(|(limiter, retry_after)| {
        Refusal::RateLimited(tenant, route, limiter, retry_after)
    })?;
    let backend = balance::pick(route, headers).ok_or(Refusal::NoHealthyBackend(tenant))?;
    Ok(Forward {
        tenant,
        route,
        backend,
        tightest,
        ask,
        admitted,
    })
}

/// Whether `remaining` requests left on `limiter` is tighter than the tightest so far (the
/// one the response's `RateLimit` headers report).
pub fn is_tighter(limiter: &Gcra, remaining: u32, tightest: Option<u32>) -> bool {
    !limiter.is_unlimited() && tightest.is_none_or(|r| remaining < r)
}

/// What the limiters said, when none refused.
struct Checked<'a> {
    tightest: Option<(&'a Arc<Gcra>, u32)>,
    ask: [Option<&'a Arc<Gcra>>; 3],
    admitted: [Option<&'a Arc<Gcra>>; 3],
}

/// Every limiter must let the request through; when one refuses, the admissions the others
/// made for it are given back.
fn check_all<'a>(
    limiters: &[Option<&'a Arc<Gcra>>; 3],
    mode: Mode,
    now: Instant,
) -> Result<Checked<'a>, (&'a Gcra, Duration)> {
    let mut tightest: Option<(&Arc<Gcra>, u32)> = None;
    let mut ask = [None; 3];
    let mut admitted = [None; 3];
    for (i, limiter) in limiters.iter().enumerate() {
        let Some(limiter) = *limiter else { continue };
        match Gcra::check_as_of(limiter, mode, now) {
            Decision::Allow { remaining } => {
                admitted[i] = Some(limiter);
                if is_tighter(limiter, remaining, tightest.map(|(_, r)| r)) {
                    tightest = Some((limiter, remaining));
                }
            }
            Decision::AskCluster => ask[i] = Some(limiter),
            Decision::Deny { retry_after } => {
                for earlier in admitted.iter().flatten() {
                    earlier.refund(mode);
                }
                return Err((limiter, retry_after));
            }
        }
    }
    Ok(Checked {
        tightest,
        ask,
        admitted,
    })
}
