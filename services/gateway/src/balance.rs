//! Choosing a backend: round robin, least connections, weighted, or a consistent hash of a
//! header. Drained and ejected backends are skipped; all of it without a lock.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering;

use http::HeaderMap;
use tenantry_proto::events::v1::BalanceAlgorithm;

use crate::snapshot::model::{Backend, RouteEntry};

fn eligible(b: &Backend) -> bool {
    !b.drained && b.state.is_healthy()
}

/// The backend for one request, if any is eligible.
pub fn pick<'a>(route: &'a RouteEntry, headers: &HeaderMap) -> Option<&'a Backend> {
    let n = route.backends.len();
    if n == 0 {
        return None;
    }
    match route.algorithm {
        BalanceAlgorithm::Weighted => {
            let len = route.wheel.len();
            let start = route.next.fetch_add(1, Ordering::Relaxed);
            (0..len)
                .map(|i| &route.backends[route.wheel[(start + i) % len]])
                .find(|b| eligible(b))
        }
        BalanceAlgorithm::LeastConn => {
            let start = route.next.fetch_add(1, Ordering::Relaxed);
            (0..n)
                .map(|i| &route.backends[(start + i) % n])
                .filter(|b| eligible(b))
                .min_by_key(|b| b.state.in_flight.load(Ordering::Relaxed))
        }
        BalanceAlgorithm::HeaderHash => {
            let key = route
                .hash_header
                .as_ref()
                .and_then(|h| headers.get(&**h))
                .map(|v| v.as_bytes());
            match key {
                Some(key) => rendezvous(route, key),
                None => round_robin(route),
            }
        }
        BalanceAlgorithm::RoundRobin | BalanceAlgorithm::Unspecified => round_robin(route),
    }
}

fn round_robin(route: &RouteEntry) -> Option<&Backend> {
    let n = route.backends.len();
    let start = route.next.fetch_add(1, Ordering::Relaxed);
    (0..n)
        .map(|i| &route.backends[(start + i) % n])
        .find(|b| eligible(b))
}

/// Weighted rendezvous hashing: each key goes to the backend with the highest score, so
/// removing a backend moves only its own keys.
fn rendezvous<'a>(route: &'a RouteEntry, key: &[u8]) -> Option<&'a Backend> {
    route
        .backends
        .iter()
        .filter(|b| eligible(b))
        .map(|b| {
            let mut h = DefaultHasher::new();
            key.hash(&mut h);
            b.state.address.hash(&mut h);
            // A uniform number in (0, 1), then the weighted score -w / ln(u).
            let u = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
            let u = u.clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
            (b, -f64::from(b.weight) / u.ln())
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(b, _)| b)
}
