//! Each route's request counts, latency histogram and body bytes, and their rendering.
//!
//! The request path adds to a route's atomics (its response's status class, its latency's own
//! bucket, the latency's sum, the bytes): no metric handle, no lock. `/metrics` renders the
//! series from the routes of the current snapshot, with the backends' states read at that
//! moment. A route that is removed leaves the snapshot and its series go with it; a series
//! registered with the process's recorder would stay there as long as the process. A route
//! that never served a request renders nothing.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::model::{RouteEntry, Snapshot};

/// Upper bounds (seconds) of the latency buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A route's counts since it first served a request. Shared by every snapshot while the route
/// exists, so they survive rebuilds.
#[derive(Default)]
pub struct RouteMetrics {
    /// Responses by status class: 1xx..5xx at index 0..4.
    responses: [AtomicU64; 5],
    /// Requests per latency bucket (`LATENCY_BUCKETS`, then +Inf), not cumulative: one add a
    /// request rather than one per bucket above its latency, each contended by every worker.
    raw: [AtomicU64; 13],
    /// Nanoseconds of latency in all.
    nanos: AtomicU64,
    /// Body bytes of forwarded requests and of their responses (and of upgraded tunnels).
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteMetrics")
    }
}

impl RouteMetrics {
    /// Body bytes of one forwarded request, and of its response as far as known.
    pub fn add_bytes(&self, bytes_in: u64, bytes_out: u64) {
        if bytes_in > 0 {
            self.bytes_in.fetch_add(bytes_in, Ordering::Relaxed);
        }
        if bytes_out > 0 {
            self.bytes_out.fetch_add(bytes_out, Ordering::Relaxed);
        }
    }

    pub fn record(&self, status: http::StatusCode, latency: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.raw[bucket].fetch_add(1, Ordering::Relaxed);
        self.nanos.fetch_add(
            u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Appends the series of every route of `snapshot` that has served a request, in the
/// Prometheus text format: `tenantry_gateway_requests_total` (by status class),
/// `tenantry_gateway_request_duration_seconds` (a histogram), `tenantry_gateway_bytes_total`
/// (in and out) and `tenantry_gateway_route_backends` (by state), each by `tenant_id` and
/// `route`.
pub fn render(snapshot: &Snapshot, out: &mut String) {
    let routes: Vec<(&RouteEntry, &RouteMetrics, String)> = snapshot
        .tenants
        .values()
        .flat_map(|tenant| tenant.routes.iter())
        .filter_map(|route| {
            let metrics = route.metrics_if_used()?;
            let labels = format!(
                "tenant_id=\"{}\",route=\"{}\"",
                route.tenant_id,
                escape(&route.route_id)
            );
            Some((&**route, metrics, labels))
        })
        .collect();
    if routes.is_empty() {
        return;
    }
    // `write!` to a `String` cannot fail.
    let _ = render_families(&routes, out);
}

fn render_families(
    routes: &[(&RouteEntry, &RouteMetrics, String)],
    out: &mut String,
) -> std::fmt::Result {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    writeln!(
        out,
        "# HELP tenantry_gateway_requests_total Requests answered per tenant and route, by status class."
    )?;
    writeln!(out, "# TYPE tenantry_gateway_requests_total counter")?;
    for (_, metrics, labels) in routes {
        for (class, n) in CLASSES.iter().zip(&metrics.responses) {
            writeln!(
                out,
                "tenantry_gateway_requests_total{{{labels},status=\"{class}\"}} {}",
                load(n)
            )?;
        }
    }
    let duration = "tenantry_gateway_request_duration_seconds";
    writeln!(
        out,
        "# HELP {duration} Time from the request head to the response head."
    )?;
    writeln!(out, "# TYPE {duration} histogram")?;
    for (_, metrics, labels) in routes {
        let mut total = 0;
        for (i, raw) in metrics.raw.iter().enumerate() {
            total += load(raw);
            match LATENCY_BUCKETS.get(i) {
                Some(le) => writeln!(out, "{duration}_bucket{{{labels},le=\"{le}\"}} {total}")?,
                None => writeln!(out, "{duration}_bucket{{{labels},le=\"+Inf\"}} {total}")?,
            }
        }
        let sum = load(&metrics.nanos) as f64 / 1_000_000_000.0;
        writeln!(out, "{duration}_sum{{{labels}}} {sum}")?;
        writeln!(out, "{duration}_count{{{labels}}} {total}")?;
    }
    writeln!(
        out,
        "# HELP tenantry_gateway_bytes_total Body bytes of forwarded requests (in) and their responses (out)."
    )?;
    writeln!(out, "# TYPE tenantry_gateway_bytes_total counter")?;
    for (_, metrics, labels) in routes {
        for (direction, n) in [("in", &metrics.bytes_in), ("out", &metrics.bytes_out)] {
            writeln!(
                out,
                "tenantry_gateway_bytes_total{{{labels},direction=\"{direction}\"}} {}",
                load(n)
            )?;
        }
    }
    writeln!(
        out,
        "# HELP tenantry_gateway_route_backends A route's backends by state."
    )?;
    writeln!(out, "# TYPE tenantry_gateway_route_backends gauge")?;
    for (route, _, labels) in routes {
        let mut states = [0u32; 3];
        for backend in &route.backends {
            let state = match (backend.drained, backend.state.is_healthy()) {
                (true, _) => 2,
                (false, true) => 0,
                (false, false) => 1,
            };
            states[state] += 1;
        }
        for (state, n) in ["healthy", "unhealthy", "drained"].iter().zip(states) {
            writeln!(
                out,
                "tenantry_gateway_route_backends{{{labels},state=\"{state}\"}} {n}"
            )?;
        }
    }
    Ok(())
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("r-1"), "r-1");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
