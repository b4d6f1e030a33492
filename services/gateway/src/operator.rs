//! The operator port: `/metrics` (every tenant's routes and traffic, so never on a port
//! tenants reach: not the data plane, not the public API port) and `/healthz`. It listens on
//! loopback unless configured otherwise (`TENANTRY_GATEWAY_METRICS_LISTEN`).

use axum::Router;
use axum::routing::get;

use crate::snapshot::follow::Current;

/// The process's recorder (the API edge's gRPC metrics, refusals, usage) and the routes' series
/// from the current snapshot.
pub fn router(snapshot: Current) -> Router {
    let recorder = tenantry_kit::metrics::handle();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let (recorder, snapshot) = (recorder.clone(), snapshot.clone());
                async move {
                    let mut out = recorder.render();
                    crate::snapshot::metrics::render(&snapshot.load(), &mut out);
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        out,
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
}
