//! Figure 2: the WebSocket feed's fan-out. `--subscribers` sockets over `--tenants` tenants
//! (the same number each) follow their tenant's feed on the orchestration binary; the bench
//! appends `--rounds` deployment events to every tenant, `--rate` a second, and times each
//! from just before its append to its arrival at each subscriber. Before any traffic, the
//! service's resident memory with every subscriber idle, against none, per subscriber.
//!
//! Baseline in the same run, after it: as many core NATS subscriptions (on one connection,
//! as the service has one) to the same tenants' event subjects, the same appends.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, stream};
use tenantry_bench::{ms, percentile};
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_eventstore::{EventPayload, subject};
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use crate::world::{self, World};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100)]
    tenants: usize,
    /// Sockets in all, spread evenly over the tenants.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Events appended to each tenant.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Appends a second (one tenant's event each).
    #[arg(long, default_value_t = 200)]
    rate: u64,
}

/// When each append was sent: `[round * tenants + tenant]`.
type Sent = Arc<Vec<OnceLock<Instant>>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.tenants > 0 && args.subscribers >= args.tenants,
        "--subscribers must be at least --tenants"
    );
    let world = World::start(&[]).await?;
    let outcome = measure(&world, &args).await;
    world.finish().await;
    outcome
}

async fn measure(world: &World, args: &Args) -> anyhow::Result<()> {
    println!(
        "feed fan-out: {} subscribers over {} tenants, {} events a tenant at {}/s; load average {}",
        args.subscribers,
        args.tenants,
        args.rounds,
        args.rate,
        world::load_average()
    );
    let tenants: Vec<Uuid> = (0..args.tenants).map(|_| Uuid::now_v7()).collect();
    // One deployment per tenant, whose events the bench appends.
    let deployments: Vec<Uuid> = (0..args.tenants).map(|_| Uuid::now_v7()).collect();

    // Memory: the service settled with no subscriber, then with all of them idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = world.rss()?;
    let sent: Sent = Arc::new(
        (0..args.rounds * args.tenants)
            .map(|_| OnceLock::new())
            .collect(),
    );
    let connected = Instant::now();
    let sockets: Vec<Socket> = stream::iter(0..args.subscribers)
        .map(|i| {
            let tenant = tenants[i % args.tenants];
            let token = world.env.token(Some(tenant), Role::Viewer);
            connect(world.addr, tenant, token)
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let connecting = connected.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = world.rss()?;
    let per = (idle.saturating_sub(before)) as f64 / args.subscribers as f64;

    let receivers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let tenant = i % args.tenants;
            tokio::spawn(receive_ws(
                ws,
                tenant,
                args.tenants,
                args.rounds,
                sent.clone(),
            ))
        })
        .collect();
    let appending = append_all(world, &tenants, &deployments, args, &sent).await?;
    let ws = gather(receivers).await?;

    // Baseline: core NATS subscriptions to the same subjects, the same appends.
    let sent: Sent = Arc::new(
        (0..args.rounds * args.tenants)
            .map(|_| OnceLock::new())
            .collect(),
    );
    let nats = world.env.nats.clone();
    let mut receivers = Vec::with_capacity(args.subscribers);
    for i in 0..args.subscribers {
        let tenant = i % args.tenants;
        let filter = format!(
            "{}.{}.*",
            subject::tenant_filter(world.store.root(), &tenants[tenant].to_string())?
                .trim_end_matches(".>"),
            DeploymentEvent::AGGREGATE_TYPE
        );
        let subscriber = nats.subscribe(filter).await?;
        receivers.push(tokio::spawn(receive_nats(
            subscriber,
            tenant,
            args.tenants,
            args.rounds,
            sent.clone(),
        )));
    }
    nats.flush().await?;
    let raw_appending = append_all(world, &tenants, &deployments, args, &sent).await?;
    let raw = gather(receivers).await?;

    println!(
        "  {:<46} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "append → delivery", "deliveries", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    row("WebSocket feed (tenantry-orchestration)", ws, args);
    row("baseline: core NATS subscriptions", raw, args);
    println!(
        "  appends took {:.1} s (feed run) and {:.1} s (baseline run); {} sockets connected in {:.1} s",
        appending.as_secs_f64(),
        raw_appending.as_secs_f64(),
        args.subscribers,
        connecting.as_secs_f64()
    );
    println!(
        "  service RSS: {:.1} MiB with no subscriber, {:.1} MiB with {} idle → {:.1} KiB per idle subscriber",
        before as f64 / 1048576.0,
        idle as f64 / 1048576.0,
        args.subscribers,
        per / 1024.0
    );
    println!("  load average after: {}", world::load_average());
    Ok(())
}

fn row(what: &str, mut samples: Vec<Duration>, args: &Args) {
    samples.sort();
    let expected = args.subscribers * args.rounds;
    println!(
        "  {what:<46} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        format!("{}/{expected}", samples.len()),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 90.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples.last().copied().unwrap_or_default()),
    );
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A socket to `tenant`'s feed, once the service said `subscribed`.
async fn connect(
    addr: std::net::SocketAddr,
    tenant: Uuid,
    token: String,
) -> anyhow::Result<Socket> {
    let mut request =
        format!("ws://{addr}/api/tenants/{tenant}/orchestration/events").into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
    let first = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .context("no `subscribed` within 30 s")?;
    match first {
        Some(Ok(Message::Text(t))) if t.as_str().contains("\"subscribed\"") => Ok(ws),
        other => anyhow::bail!("expected `subscribed`, got {other:?}"),
    }
}

/// Appends `rounds` events to every tenant's deployment at `rate`, noting when each was sent.
async fn append_all(
    world: &World,
    tenants: &[Uuid],
    deployments: &[Uuid],
    args: &Args,
    sent: &Sent,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for round in 0..args.rounds {
        for (t, tenant) in tenants.iter().enumerate() {
            tick.tick().await;
            let event = DeploymentEvent::HealthChanged(pb::HealthChanged {
                instance_id: Uuid::now_v7().to_string(),
                healthy: true,
                detail: format!("bench round {round}"),
            });
            let _ = sent[round * tenants.len() + t].set(Instant::now());
            tenantry_testkit::append(
                &world.store,
                &tenant.to_string(),
                &deployments[t].to_string(),
                event,
            )
            .await?;
        }
    }
    Ok(started.elapsed())
}

/// The times of a subscriber's deliveries: the k-th event it gets is its tenant's k-th round
/// (a tenant's events arrive in order).
fn delays(arrived: &[Instant], tenant: usize, tenants: usize, sent: &Sent) -> Vec<Duration> {
    arrived
        .iter()
        .enumerate()
        .filter_map(|(round, at)| {
            let sent = sent.get(round * tenants + tenant)?.get()?;
            Some(at.saturating_duration_since(*sent))
        })
        .collect()
}

/// Gives up on deliveries still missing this long after the last arrival.
const QUIET: Duration = Duration::from_secs(10);

async fn receive_ws(
    mut ws: Socket,
    tenant: usize,
    tenants: usize,
    rounds: usize,
    sent: Sent,
) -> Vec<Duration> {
    let mut arrived = Vec::with_capacity(rounds);
    while arrived.len() < rounds {
        match tokio::time::timeout(QUIET + Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => arrived.push(Instant::now()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                println!(
                    "    a socket was closed after {} events: {frame:?}",
                    arrived.len()
                );
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => {
                println!(
                    "    a socket ended after {} events: {other:?}",
                    arrived.len()
                );
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    delays(&arrived, tenant, tenants, &sent)
}

async fn receive_nats(
    mut subscriber: async_nats::Subscriber,
    tenant: usize,
    tenants: usize,
    rounds: usize,
    sent: Sent,
) -> Vec<Duration> {
    let mut arrived = Vec::with_capacity(rounds);
    while arrived.len() < rounds {
        match tokio::time::timeout(QUIET + Duration::from_secs(30), subscriber.next()).await {
            Ok(Some(_)) => arrived.push(Instant::now()),
            _ => break,
        }
    }
    let _ = subscriber.unsubscribe().await;
    delays(&arrived, tenant, tenants, &sent)
}

async fn gather(
    receivers: Vec<tokio::task::JoinHandle<Vec<Duration>>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut all = Vec::new();
    for r in receivers {
        all.extend(r.await?);
    }
    Ok(all)
}
