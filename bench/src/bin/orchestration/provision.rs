//! Figure 1: provision → healthy on the process runtime. Each of `--provisions` tenants
//! provisions one instance of the catalog's web program, one after another, through the
//! gRPC `Provision`; the bench follows the deployment events on the log and times, from the
//! call, the `pod.created` and the healthy `health.changed` the reconciler appends.
//!
//! Baseline in the same run: the floor, the same program spawned directly and probed every
//! millisecond until it answers HTTP.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tenantry_bench::{authed, ms, percentile};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_eventstore::{EventPayload, StreamKind, TailItem, subject};
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use tenantry_proto::orchestration::v1::{self as api};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::world::{self, WEB, World};

/// The service's default `--orchestration-reconcile-interval-ms`.
const DEFAULT_RECONCILE_MS: u64 = 500;

#[derive(clap::Args)]
pub struct Args {
    /// Deployments provisioned, one after another (one tenant each).
    #[arg(long, default_value_t = 100)]
    provisions: usize,
    /// The spec's probe interval (0: the service's default, 1 s).
    #[arg(long, default_value_t = 0)]
    probe_interval_ms: u32,
    /// The reconciler's pass interval (unset: the service's default, 500 ms).
    #[arg(long)]
    reconcile_interval_ms: Option<u64>,
    /// Spawns of the program directly, for the floor.
    #[arg(long, default_value_t = 100)]
    floor_runs: usize,
}

/// What the log said of one deployment, and when the bench read it.
enum Seen {
    Created(Uuid, Instant),
    Healthy(Uuid, Instant),
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let www = std::env::temp_dir().join(format!("tenantry-bench-www-{}", std::process::id()));
    let program = world::web_program(&www)?;
    let mut envs = vec![(
        "TENANTRY_ORCHESTRATION_PROCESS_IMAGES",
        format!("{WEB}={}", program.join(" ")),
    )];
    if let Some(every) = args.reconcile_interval_ms {
        envs.push((
            "TENANTRY_ORCHESTRATION_RECONCILE_INTERVAL_MS",
            every.to_string(),
        ));
    }
    let world = World::start(&envs).await?;
    let outcome = measure(&world, &args, &program).await;
    world.finish().await;
    let _ = std::fs::remove_dir_all(&www);
    outcome
}

async fn measure(world: &World, args: &Args, program: &[String]) -> anyhow::Result<()> {
    println!(
        "provision → healthy: {} deployments of `{WEB}` (python3 -m http.server), one at a time, reconciler every {} ms; load average {}",
        args.provisions,
        args.reconcile_interval_ms.unwrap_or(DEFAULT_RECONCILE_MS),
        world::load_average()
    );
    let tenants = world.tenants(args.provisions).await?;
    let seen = follow(world).await?;
    let channel = tenantry_testkit::channel(world.addr).await;
    let mut client = OrchestrationServiceClient::new(channel);
    let mut seen = seen;
    let mut returned = Vec::new();
    let mut created = Vec::new();
    let mut healthy = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    // The previous deployment turned healthy at one of the reconciler's passes: a pause of
    // up to a whole cycle lands the next call at any point of it, not just after a pass.
    let cycle = args
        .reconcile_interval_ms
        .unwrap_or(DEFAULT_RECONCILE_MS)
        .max(1);
    for (i, tenant) in tenants.iter().enumerate() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(rng % cycle)).await;
        let (started, id) = provision(&mut client, world, *tenant, args).await?;
        returned.push(started.elapsed());
        let (mut at_created, mut at_healthy) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while at_healthy.is_none() {
            let next = tokio::time::timeout_at(deadline, seen.recv())
                .await
                .with_context(|| format!("deployment {i} not healthy within 30 s"))?
                .context("the log's tail ended")?;
            match next {
                Seen::Created(d, at) if d == id => at_created = Some(at),
                Seen::Healthy(d, at) if d == id => at_healthy = Some(at),
                _ => {}
            }
        }
        if let (Some(c), Some(h)) = (at_created, at_healthy) {
            created.push(c.saturating_duration_since(started));
            healthy.push(h.saturating_duration_since(started));
        }
        if (i + 1) % 25 == 0 {
            println!("    … {} of {} healthy", i + 1, args.provisions);
        }
    }

    let floor = floor(program, args.floor_runs).await?;
    println!(
        "  {:<44} {:>9} {:>9} {:>9} {:>9}",
        "from the call to", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    row("Provision returned", returned);
    row("pod.created on the log", created);
    row("health.changed (healthy) on the log", healthy);
    row("floor: spawn → first HTTP answer", floor);
    println!("  load average after: {}", world::load_average());
    Ok(())
}

fn row(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "  {what:<44} {:>9.1} {:>9.1} {:>9.1} {:>9.1}   ({} samples)",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 90.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
        samples.len()
    );
}

/// Provisions one instance for `tenant`; the time of the call that was accepted, and the id.
/// A call refused because the service has not read the tenant's plan yet is repeated.
async fn provision(
    client: &mut OrchestrationServiceClient<tonic::transport::Channel>,
    world: &World,
    tenant: Uuid,
    args: &Args,
) -> anyhow::Result<(Instant, Uuid)> {
    let token = world.env.token(Some(tenant), Role::Owner);
    let spec = pb::DeploymentSpec {
        name: "web".into(),
        runtime: "process".into(),
        image: WEB.into(),
        version: "1.0.0".into(),
        replicas: 1,
        health: Some(pb::HealthProbe {
            path: "/".into(),
            interval_ms: args.probe_interval_ms,
            ..Default::default()
        }),
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        let request = api::ProvisionRequest {
            tenant_id: tenant.to_string(),
            spec: Some(spec.clone()),
            deployment_id: String::new(),
            secrets: Default::default(),
        };
        match client.provision(authed(request, &token)).await {
            Ok(r) => return Ok((started, r.into_inner().deployment_id.parse()?)),
            Err(s) if Instant::now() < deadline => {
                say_refusal(&s);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => anyhow::bail!("Provision: {s:?}"),
        }
    }
}

/// A refusal before the plan is read is expected once in a while; anything else is shown.
fn say_refusal(status: &tonic::Status) {
    if status.code() != tonic::Code::FailedPrecondition {
        println!("    Provision refused ({status:?}); retrying");
    }
}

/// Every deployment event appended from now on, as a tail of the log reads it.
async fn follow(world: &World) -> anyhow::Result<mpsc::UnboundedReceiver<Seen>> {
    let store = &world.store;
    let filter = subject::type_filter(store.root(), DeploymentEvent::AGGREGATE_TYPE)?;
    let start = store.last_position().await?;
    let mut tail = store
        .tail_after::<tenantry_eventstore::StoredMessage>(StreamKind::Events, filter, start)
        .await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = tail.next().await {
            let at = Instant::now();
            let TailItem::Message {
                decoded: Ok(message),
                ..
            } = item
            else {
                continue;
            };
            let Ok(events) = message.events::<DeploymentEvent>() else {
                continue;
            };
            for stored in events {
                let Ok(id) = Uuid::try_parse(&stored.meta.aggregate_id) else {
                    continue;
                };
                let seen = match stored.event {
                    DeploymentEvent::PodCreated(_) => Seen::Created(id, at),
                    DeploymentEvent::HealthChanged(h) if h.healthy => Seen::Healthy(id, at),
                    _ => continue,
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// The floor: the same program spawned directly, probed every millisecond until it answers
/// (a plain `GET /` on a fresh connection, as the runtime's probe does).
async fn floor(program: &[String], runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let args: Vec<String> = program[1..]
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let started = Instant::now();
        let mut child = tokio::process::Command::new(&program[0])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if answers(addr).await {
                samples.push(started.elapsed());
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the program did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        child.kill().await?;
    }
    Ok(samples)
}

/// A `GET /` on a fresh connection answered with a 2xx status line (only its first bytes
/// read, as the runtime's probe does).
async fn answers(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let request = "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.is_ok() && head[9] == b'2'
}
