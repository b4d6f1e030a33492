//! Load generators that measure Tenantry beside its baselines. Each binary prints its figures
//! as a table; see `bench/README.md` for what each one measures and how.

use std::time::Duration;

/// Percentile of sorted samples (`p` in 0..=100).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median of a few runs' rates, to damp the noise of a shared 2-core machine.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// A plain HTTP/1.1 GET of `path` (health and metrics endpoints), the whole response.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).await?;
    Ok(out)
}

/// Starts the release service binary `name` (built beside this one) on a free port given in
/// `listen_var`, with `envs`, so the load generator and the service do not share a runtime,
/// and waits until it is ready. Dropping the child stops it.
pub async fn spawn_binary(
    name: &str,
    listen_var: &str,
    envs: &[(&str, String)],
) -> anyhow::Result<(std::net::SocketAddr, tokio::process::Child)> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let binary = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p {name}",
        binary.display()
    );
    let child = tokio::process::Command::new(binary)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env(listen_var, addr.to_string())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    for _ in 0..200 {
        if http_get(addr, "/readyz")
            .await
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
        {
            return Ok((addr, child));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{name} did not become ready on {addr}")
}

/// A request with a bearer token.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    r
}

/// Appends one of billing's `subscription` events for `tenant`, as billing will.
pub async fn append_billing(
    store: &tenantry_eventstore::EventStore,
    tenant: &str,
    event: tenantry_contracts::billing::SubscriptionEvent,
) -> anyhow::Result<()> {
    tenantry_testkit::append(store, tenant, tenant, event).await?;
    Ok(())
}

/// What every service binary started in a bench world is given: its NATS, its own NATS user's
/// credentials (as in production), the world's stream prefix and the tokens' issuer and
/// audience. Each caller adds its service's own settings.
pub fn world_env(common: &tenantry_kit::config::CommonConfig) -> Vec<(&'static str, String)> {
    vec![
        ("TENANTRY_NATS_URL", common.nats_url.clone()),
        (
            "TENANTRY_NATS_CREDENTIALS_DIR",
            common
                .nats_credentials_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        (
            "TENANTRY_STREAM_PREFIX",
            common.stream_prefix.clone().unwrap_or_default(),
        ),
        ("TENANTRY_JWT_ISSUER", common.jwt_issuer.clone()),
        ("TENANTRY_JWT_AUDIENCE", common.jwt_audience.clone()),
    ]
}

/// Resolves on Ctrl-C or SIGTERM (`timeout`): a bench selects on it, so its figure's future,
/// and with it the world it made, is dropped and cleaned up.
pub async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs only when asked (`RUST_LOG`, e.g. `tenantry_eventstore=debug`); keep the guard.
pub fn telemetry_if_asked() -> anyhow::Result<Option<tenantry_kit::telemetry::TelemetryGuard>> {
    match std::env::var_os("RUST_LOG") {
        Some(_) => Ok(Some(tenantry_kit::telemetry::init(
            "bench",
            tenantry_kit::config::LogFormat::Text,
        )?)),
        None => Ok(None),
    }
}
