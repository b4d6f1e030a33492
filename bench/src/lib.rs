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
