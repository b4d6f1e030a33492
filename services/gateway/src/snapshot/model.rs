//! What a snapshot holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use tenantry_kit::egress::Egress;

use crate::limit::Gcra;

pub use super::metrics::{LATENCY_BUCKETS, RouteMetrics};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
    Decommissioning,
}

/// One upstream of a route. Shared by every snapshot while the route keeps it, so its
/// counters survive configuration changes.
/// Hot fields first, in one cache line (see [`HostSlot`]).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct BackendState {
    pub healthy: AtomicBool,
    /// Passively ejected until this many milliseconds after [`EPOCH`].
    ejected_until: AtomicU64,
    pub in_flight: AtomicUsize,
    /// Consecutive failures (connection errors, 5xx) for passive ejection.
    pub failures: AtomicU32,
    pub address: String,
    /// `address` parsed once, for the upstream URI and `Host` of every request.
    pub authority: Option<http::uri::Authority>,
    pub host_header: Option<http::HeaderValue>,
    /// Active checks: when the next is due, whether one is running, and the streak of
    /// results (positive: successes, negative: failures).
    pub check_due_ms: AtomicU64,
    pub checking: AtomicBool,
    pub check_streak: std::sync::atomic::AtomicI32,
    /// The outbound policy every new connection to this backend (requests, health checks)
    /// goes through: the address is resolved and judged again each time.
    pub egress: Arc<Egress>,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

pub fn now_ms() -> u64 {
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Consecutive failures that eject a backend, and for how long.
pub const EJECT_AFTER: u32 = 3;
pub const EJECT_FOR: Duration = Duration::from_secs(5);

impl BackendState {
    pub fn new(address: String, egress: Arc<Egress>) -> Self {
        Self {
            egress,
            authority: address.parse().ok(),
            host_header: http::HeaderValue::from_str(&address).ok(),
            address,
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            check_due_ms: AtomicU64::new(0),
            checking: AtomicBool::new(false),
            check_streak: std::sync::atomic::AtomicI32::new(0),
        }
    }

    /// Loads the line [`Self::is_healthy`] reads (see [`HostSlot::prefetch`]).
    fn touch(&self) {
        std::hint::black_box(self.ejected_until.load(Ordering::Relaxed));
    }

    /// Up by its health check and not passively ejected.
    pub fn is_healthy(&self) -> bool {
        // A backend never ejected (or cleared since) needs no clock.
        let until = self.ejected_until.load(Ordering::Relaxed);
        self.healthy.load(Ordering::Relaxed) && (until == 0 || now_ms() >= until)
    }

    pub fn record_success(&self) {
        if self.ejected_until.load(Ordering::Relaxed) != 0 {
            self.ejected_until.store(0, Ordering::Relaxed);
        }
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// A connection error or a 5xx; a streak of them ejects the backend for a while (after
    /// which it gets traffic again, and one more failure ejects it again).
    pub fn record_failure(&self) {
        let streak = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if streak >= EJECT_AFTER {
            let until = now_ms() + u64::try_from(EJECT_FOR.as_millis()).unwrap_or(5000);
            self.ejected_until.store(until, Ordering::Relaxed);
            self.failures.store(EJECT_AFTER - 1, Ordering::Relaxed);
            tracing::warn!(backend = %self.address, "backend ejected after a failure streak");
        }
    }
}

/// A backend as one snapshot sees it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub state: Arc<BackendState>,
    pub weight: u32,
    pub drained: bool,
}

/// Per-tenant counters of what the gateway refused.
#[derive(Clone)]
pub struct TenantMetrics {
    pub rate_limited: metrics::Counter,
    pub quota_blocked: metrics::Counter,
}

impl std::fmt::Debug for TenantMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantMetrics")
    }
}

impl TenantMetrics {
    pub fn new(tenant: Uuid) -> Self {
        let t = tenant.to_string();
        Self {
            rate_limited: metrics::counter!("tenantry_gateway_rate_limited_total", "tenant_id" => t.clone()),
            quota_blocked: metrics::counter!("tenantry_gateway_quota_blocked_total", "tenant_id" => t),
        }
    }
}

/// A route's backends: up to two inline, so choosing one reads no further allocation.
pub type Backends = smallvec::SmallVec<[Backend; 2]>;

/// What the decision reads first (see [`HostSlot`]): the round-robin counter, the
/// backends and the algorithm in the first cache line, the limiter at the start of the second.
/// Boxed slices rather than vectors keep it at three lines, the size class of the tenant's
/// other objects, so the allocator puts it on their memory page (one TLB miss for them all).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct RouteEntry {
    pub next: AtomicUsize,
    pub backends: Backends,
    pub algorithm: pb::BalanceAlgorithm,
    /// Backends speak HTTP/2 without TLS (prior knowledge).
    pub upstream_h2c: bool,
    /// The plan's per-route limit; `None` when the plan has none.
    pub limiter: Option<Arc<Gcra>>,
    /// Empty: every host of the tenant.
    pub hosts: Box<[String]>,
    pub path_prefix: Box<str>,
    /// Boxed: only `header_hash` routes have one, and it would take most of a cache line.
    pub hash_header: Option<Box<http::HeaderName>>,
    /// Backend indexes repeated by weight, for `weighted`.
    pub wheel: Box<[usize]>,
    pub tenant_id: Uuid,
    pub route_id: Box<str>,
    /// The deployment whose ready instances are the backends, if the route names one.
    pub deployment_id: Option<Uuid>,
    /// Registered on the route's first request (idle routes cost no metric series); shared
    /// by every snapshot while the route exists, so its counts survive rebuilds.
    metrics: Arc<std::sync::OnceLock<RouteMetrics>>,
}

impl RouteEntry {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant_id: Uuid,
        route_id: String,
        hosts: Vec<String>,
        path_prefix: String,
        algorithm: pb::BalanceAlgorithm,
        hash_header: Option<http::HeaderName>,
        backends: Backends,
        wheel: Vec<usize>,
        limiter: Option<Arc<Gcra>>,
        upstream_h2c: bool,
        deployment_id: Option<Uuid>,
        metrics: Arc<std::sync::OnceLock<RouteMetrics>>,
    ) -> Self {
        Self {
            deployment_id,
            tenant_id,
            metrics,
            route_id: route_id.into_boxed_str(),
            hosts: hosts.into_boxed_slice(),
            path_prefix: path_prefix.into_boxed_str(),
            algorithm,
            hash_header: hash_header.map(Box::new),
            backends,
            wheel: wheel.into_boxed_slice(),
            next: AtomicUsize::new(0),
            limiter,
            upstream_h2c,
        }
    }

    pub fn metrics(&self) -> &RouteMetrics {
        self.metrics.get_or_init(RouteMetrics::default)
    }

    /// The route's metrics, registered, to count into after the request (a streamed body).
    pub fn shared_metrics(&self) -> Arc<std::sync::OnceLock<RouteMetrics>> {
        self.metrics();
        self.metrics.clone()
    }

    /// Loads both lines the decision reads (see [`HostSlot::prefetch`]).
    fn touch(&self) {
        std::hint::black_box(self.next.load(Ordering::Relaxed));
        std::hint::black_box(self.limiter.is_some());
    }

    /// The route's metrics if it has served a request.
    pub fn metrics_if_used(&self) -> Option<&RouteMetrics> {
        self.metrics.get()
    }

    /// Answers every request of its tenant: prefix `/`, no hosts.
    pub fn is_catch_all(&self) -> bool {
        self.hosts.is_empty() && &*self.path_prefix == "/"
    }

    /// Whether the route answers `host` + `path`.
    pub fn matches(&self, host: &str, path: &str) -> bool {
        (self.hosts.is_empty() || self.hosts.iter().any(|h| h == host))
            && path.starts_with(&*self.path_prefix)
    }
}

/// How much configuration a tenant's plan allows; 0 leaves a bound at the gateway's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigBounds {
    pub max_routes: u32,
    pub max_backends_per_route: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Sustained requests per second; 0 = unlimited.
    pub rps: u32,
    pub burst: u32,
}

/// A tenant as the snapshot holds it. The decision reaches it through a [`HostSlot`], which
/// copies what the request path reads first; what is here is read next (or only by the API).
#[derive(Debug)]
#[repr(C, align(64))]
pub struct TenantEntry {
    pub status: TenantStatus,
    /// A quota is used up and the plan blocks traffic.
    pub blocked_by_quota: bool,
    /// A quota is used up and the plan blocks configuration changes (routes).
    pub config_blocked: bool,
    /// The route with prefix `/` and no hosts, if any: what nothing more specific matches.
    pub fallback: Option<Arc<RouteEntry>>,
    pub limiter: Arc<Gcra>,
    /// The plan's per-API-key limits; `None` when the plan has none.
    pub api_keys: Option<Arc<KeyLimits>>,
    /// Every other route, longest prefix first (a host-specific route before a host-less one
    /// of the same prefix).
    pub specific: Box<[Arc<RouteEntry>]>,
    pub usage: Arc<crate::usage::Usage>,
    pub tenant_id: Uuid,
    pub limits: Limits,
    /// The plan's bounds on the tenant's configuration (0: the gateway's default).
    pub config_limits: ConfigBounds,
    /// Every route, as configured (listing, metrics).
    pub routes: Vec<Arc<RouteEntry>>,
    /// Registered on the tenant's first refusal.
    pub metrics: std::sync::OnceLock<TenantMetrics>,
}

impl TenantEntry {
    pub fn metrics(&self) -> &TenantMetrics {
        self.metrics
            .get_or_init(|| TenantMetrics::new(self.tenant_id))
    }

    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<RouteEntry>> {
        self.specific
            .iter()
            .find(|r| r.matches(host, path))
            .or(self.fallback.as_ref())
    }
}

/// What the host map holds for a host: its tenant, and copies of what the decision reads
/// first (one cache line with the key). With 100,000 tenants every object a decision reads
/// misses the cache, at about 200 ns a miss on a VM. Reached through the tenant, the limiter,
/// route and backends would cost the tenant's miss and then theirs; from here,
/// [`HostSlot::prefetch`] starts them all at once, and a tenant with only a catch-all route
/// and no per-key limits is decided without reading its entry at all.
#[derive(Debug, Clone)]
pub struct HostSlot {
    pub tenant: Arc<TenantEntry>,
    pub limiter: Arc<Gcra>,
    pub fallback: Option<Arc<RouteEntry>>,
    /// The fallback route's first backends.
    pub warm: [Option<Arc<BackendState>>; 2],
    pub status: TenantStatus,
    pub blocked_by_quota: bool,
    /// No route but the fallback and no per-key limits: the slot decides alone.
    pub plain: bool,
}

impl HostSlot {
    pub fn of(tenant: &Arc<TenantEntry>) -> Self {
        let mut warm = tenant
            .fallback
            .iter()
            .flat_map(|r| r.backends.iter().map(|b| Some(b.state.clone())));
        Self {
            limiter: tenant.limiter.clone(),
            fallback: tenant.fallback.clone(),
            warm: [warm.next().flatten(), warm.next().flatten()],
            status: tenant.status,
            blocked_by_quota: tenant.blocked_by_quota,
            plain: tenant.specific.is_empty() && tenant.api_keys.is_none(),
            tenant: tenant.clone(),
        }
    }

    /// The route for `host` + `path`.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<RouteEntry>> {
        if self.plain {
            self.fallback.as_ref()
        } else {
            self.tenant.route(host, path)
        }
    }

    /// Starts loading the lines the decision reads next: the limiter, the catch-all route and
    /// its backends (the tenant's too, unless the slot decides alone). Read as the decision
    /// reaches them, the limiter's compare-and-swap would hold back the loads after it and the
    /// misses would add up; started here together, they overlap.
    pub fn prefetch(&self) {
        self.limiter.touch();
        if let Some(route) = &self.fallback {
            route.touch();
        }
        for state in self.warm.iter().flatten() {
            state.touch();
        }
        if !self.plain {
            std::hint::black_box(self.tenant.specific.len());
        }
    }
}

/// A tenant's per-API-key limiters: one per live Tenantry API key (`tk_…`, presented in
/// `x-api-key` or `Authorization: Bearer`), and one shared by every `tk_` key the gateway does
/// not know (revoked or made up), so inventing keys does not escape the per-key limit.
/// Requests without a Tenantry key are limited per tenant and per route only.
#[derive(Debug)]
pub struct KeyLimits {
    /// By the key's SHA-256 digest, as the auth service's events carry it.
    pub keys: HashMap<Box<[u8]>, Arc<Gcra>>,
    pub unknown: Arc<Gcra>,
}

impl KeyLimits {
    pub fn limiter_for(&self, headers: &http::HeaderMap) -> Option<&Arc<Gcra>> {
        let key = presented_key(headers)?;
        let digest = tenantry_kit::auth::api_keys::digest(key);
        Some(self.keys.get(digest.as_slice()).unwrap_or(&self.unknown))
    }
}

/// The Tenantry API key a request carries, if any.
fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    use tenantry_kit::auth::api_keys::API_KEY_PREFIX;
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok())
        && key.starts_with(API_KEY_PREFIX)
    {
        return Some(key);
    }
    let bearer = tenantry_kit::auth::bearer(headers)?;
    bearer.starts_with(API_KEY_PREFIX).then_some(bearer)
}

/// A backend with an active health check.
#[derive(Debug, Clone)]
pub struct Check {
    pub backend: Arc<BackendState>,
    pub config: pb::HealthCheck,
}

/// A host name's 128-bit digest (keyed foldhash and a seeded FNV-1a): the snapshot's host map
/// compares two words in its table instead of following a pointer to each candidate name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostKey(u64, u64);

impl std::hash::Hash for HostKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// The map's hasher passes the key's first word (already a keyed hash) through.
#[derive(Default)]
pub struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The keys of the host digest, from the OS's randomness (by way of std's `RandomState`) at
/// start: hosts come from tenants (custom domains), so their places in the map must not be
/// predictable. foldhash rather than std's SipHash: a third of the cost on every request, with
/// the map's first word still keyed.
static HOST_SEEDS: LazyLock<(foldhash::SharedSeed, u64, u64)> = LazyLock::new(|| {
    let random = std::hash::RandomState::new();
    let draw = |n: u64| std::hash::BuildHasher::hash_one(&random, n);
    (
        foldhash::SharedSeed::from_u64(draw(1)),
        draw(2),
        draw(3) | 1,
    )
});

impl HostKey {
    pub fn of(host: &str) -> Self {
        let (shared, per_map, seed) = &*HOST_SEEDS;
        let mut fnv = *seed;
        for b in host.as_bytes() {
            fnv = (fnv ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
        let fold = std::hash::BuildHasher::hash_one(
            &foldhash::quality::SeedableRandomState::with_seed(*per_map, shared),
            host,
        );
        Self(fold, fnv)
    }
}

pub type HostMap = HashMap<HostKey, HostSlot, std::hash::BuildHasherDefault<PassThrough>>;

#[derive(Debug, Default)]
pub struct Snapshot {
    /// Lower-case host → tenant (one lookup on the request path).
    pub hosts: HostMap,
    pub tenants: HashMap<Uuid, Arc<TenantEntry>>,
    /// Every backend with an active health check.
    pub checks: Arc<Vec<Check>>,
    /// Every (tenant, deployment) provisioned and not decommissioned: what a route may name.
    pub deployments: Arc<std::collections::HashSet<(Uuid, Uuid)>>,
    /// Stream position of the last event folded in.
    pub position: u64,
}

impl Snapshot {
    pub fn host(&self, host: &str) -> Option<&HostSlot> {
        self.hosts.get(&HostKey::of(host))
    }

    pub fn tenant_of_host(&self, host: &str) -> Option<&Arc<TenantEntry>> {
        self.host(host).map(|slot| &slot.tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_shares_the_size_class_of_the_tenant_and_its_limiter() {
        // The decision's objects of one tenant come from one allocator size class, so they
        // sit together (see `RouteEntry`).
        assert_eq!(size_of::<RouteEntry>(), 192);
        assert_eq!(size_of::<TenantEntry>(), 192);
        assert_eq!(size_of::<Gcra>(), 192);
        assert_eq!(size_of::<BackendState>(), 192);
        // With its key, one cache line in the host map.
        assert_eq!(size_of::<(HostKey, HostSlot)>(), 64);
    }

    #[test]
    fn a_host_has_one_key_and_different_hosts_different_ones() {
        let hosts = [
            "acme.tenantry.dev",
            "acme.tenantry.de",
            "shop.acme.com",
            "",
            "a",
        ];
        for (i, a) in hosts.iter().enumerate() {
            // The same host from another allocation: the key is the text's, not its address's.
            let copy = String::from(*a);
            assert_eq!(HostKey::of(a), HostKey::of(&copy));
            for b in &hosts[i + 1..] {
                assert_ne!(HostKey::of(a), HostKey::of(b), "{a} / {b}");
            }
        }
    }

    #[test]
    fn a_tenantry_key_is_read_from_x_api_key_or_a_bearer_token() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("authorization", "Bearer eyJhbGciOi.jwt".parse().unwrap());
        assert_eq!(presented_key(&h), None, "a JWT is not an API key");
        h.insert("authorization", "Bearer tk_abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("tk_abc"));
        // The scheme in any case, as every service reads it: no way around the key's limit.
        h.insert("authorization", "bearer tk_abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("tk_abc"));
        h.insert("x-api-key", "tk_def".parse().unwrap());
        assert_eq!(presented_key(&h), Some("tk_def"), "x-api-key first");
        h.insert("x-api-key", "someone-elses-key".parse().unwrap());
        assert_eq!(
            presented_key(&h),
            Some("tk_abc"),
            "not ours: the bearer one"
        );
    }
}
