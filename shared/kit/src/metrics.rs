//! The Prometheus recorder. Installed once per process; every service in the process (e.g.
//! `tenantry dev`) shares it and serves it on `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder on first use and returns the handle that renders it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (a test harness); metrics
            // then go there and /metrics renders an empty page.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
