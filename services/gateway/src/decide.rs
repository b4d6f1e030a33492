//! The per-request decision, pure and synchronous: host → tenant → status → route → quota →
//! rate limit → backend, from one snapshot. No lock, no I/O, no allocation.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use crate::balance;
use crate::limit::Decision;
use crate::snapshot::model::{Backend, RouteEntry, Snapshot, TenantEntry, TenantStatus};

/// Where a request goes.
#[derive(Debug)]
pub struct Forward<'a> {
    pub tenant: &'a Arc<TenantEntry>,
    pub route: &'a Arc<RouteEntry>,
    pub backend: &'a Backend,
    /// Requests left in the tenant's burst.
    pub remaining: u32,
}

/// Why the gateway answers a request itself.
#[derive(Debug)]
pub enum Refusal<'a> {
    UnknownHost,
    Suspended(&'a TenantEntry),
    Decommissioned(&'a TenantEntry),
    NoRoute(&'a TenantEntry),
    QuotaExceeded(&'a TenantEntry, &'a RouteEntry),
    RateLimited(&'a TenantEntry, &'a RouteEntry, Duration),
    NoHealthyBackend(&'a TenantEntry),
}

/// Decides a request for `host` (lower-case, no port) and `path`.
pub fn decide<'a>(
    snapshot: &'a Snapshot,
    host: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Forward<'a>, Refusal<'a>> {
    let tenant = snapshot.tenant_of_host(host).ok_or(Refusal::UnknownHost)?;
    match tenant.status {
        TenantStatus::Active => {}
        TenantStatus::Suspended => return Err(Refusal::Suspended(tenant)),
        TenantStatus::Decommissioning => return Err(Refusal::Decommissioned(tenant)),
    }
    let route = tenant.route(host, path).ok_or(Refusal::NoRoute(tenant))?;
    if tenant.blocked_by_quota {
        return Err(Refusal::QuotaExceeded(tenant, route));
    }
    let remaining = match tenant.limiter.check() {
        Decision::Allow { remaining } => remaining,
        Decision::Deny { retry_after } => {
            return Err(Refusal::RateLimited(tenant, route, retry_after));
        }
    };
    let backend = balance::pick(route, headers).ok_or(Refusal::NoHealthyBackend(tenant))?;
    Ok(Forward {
        tenant,
        route,
        backend,
        remaining,
    })
}
