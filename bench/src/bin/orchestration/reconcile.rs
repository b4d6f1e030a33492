//! Figure 3: reconcile after a restart. `--tenants` (1,000) tenants each provision one
//! Kubernetes deployment (2 replicas, autoscaled: 7 objects a tenant, with its namespace,
//! quota, limit range and network policy) through gRPC, against the Kubernetes API stand-in;
//! once all are applied the service is killed and started again. The figure: from the new
//! process's spawn to its reconciler having applied every tenant's objects again (counted at
//! the stand-in), which changes nothing on the server (every `resourceVersion` stays).
//!
//! Baseline in the same run: the floor, the same apply requests (same paths, same objects)
//! sent to the stand-in by a plain HTTP client, as many tenants at once as the runtime (16),
//! each tenant's in order.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use tenantry_bench::authed;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use tenantry_proto::orchestration::v1::{self as api};
use tenantry_testkit::fakes::kube_api::KubeApi;
use uuid::Uuid;

use crate::world::{World, load_average};

/// Objects per tenant: namespace, quota, limit range, network policy, deployment, service,
/// autoscaler.
const OBJECTS_PER_TENANT: usize = 7;
/// Tenants applied at once by the runtime (its `CONCURRENT_TENANTS`), and by the floor.
const CONCURRENT_TENANTS: usize = 16;

#[derive(clap::Args)]
pub struct Args {
    /// Tenants, one Kubernetes deployment each.
    #[arg(long, default_value_t = 1_000)]
    tenants: usize,
    /// Provisions in flight while the world is made.
    #[arg(long, default_value_t = 16)]
    provision_concurrency: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let stand_in = KubeApi::start().await;
    let envs = [(
        "TENANTRY_ORCHESTRATION_KUBERNETES",
        stand_in.kubeconfig().display().to_string(),
    )];
    let mut world = World::start(&envs).await?;
    let outcome = measure(&mut world, &stand_in, &args).await;
    world.finish().await;
    outcome
}

async fn measure(world: &mut World, stand_in: &KubeApi, args: &Args) -> anyhow::Result<()> {
    let expected = args.tenants * OBJECTS_PER_TENANT;
    println!(
        "reconcile after a restart: {} tenants' Kubernetes objects ({expected}) against the stand-in (load {})",
        args.tenants,
        load_average()
    );
    let tenants = world.tenants(args.tenants).await?;
    let made = Instant::now();
    provision_all(world, &tenants, args.provision_concurrency).await?;
    wait_for(
        "the first apply of every object",
        Duration::from_secs(300),
        || async { stand_in.versions().await.len() >= expected },
    )
    .await?;
    println!(
        "  provisioned and applied once in {:.1} s",
        made.elapsed().as_secs_f64()
    );
    let versions = stand_in.versions().await;
    let before = stand_in.apply_count().await;

    let spawned = world.restart().await?;
    let ready = spawned.elapsed();
    wait_for(
        "every object applied again",
        Duration::from_secs(300),
        || async { stand_in.apply_count().await >= before + expected },
    )
    .await?;
    let reconciled = spawned.elapsed();
    let applies = stand_in.applies().await;
    let again: Vec<String> = applies[before..].iter().map(|a| a.path.clone()).collect();
    let unchanged = stand_in.versions().await == versions;

    let floor = floor(stand_in, &again).await?;
    println!("  {:<58} {:>9} {:>10}", "", "requests", "seconds");
    println!(
        "  {:<58} {:>9} {:>10.2}",
        "restarted service: spawn → every object applied again",
        again.len(),
        reconciled.as_secs_f64()
    );
    println!(
        "  {:<58} {:>9} {:>10.2}",
        "  of which spawn → ready (log read, watches started)",
        "",
        ready.as_secs_f64()
    );
    println!(
        "  {:<58} {:>9} {:>10.2}",
        "floor: the same applies by a plain client, 16 tenants at once",
        again.len(),
        floor.as_secs_f64()
    );
    println!(
        "  goal: under 30 s; {:.2}× the floor; server objects unchanged by the restart: {unchanged} (load now {})",
        reconciled.as_secs_f64() / floor.as_secs_f64().max(f64::EPSILON),
        load_average()
    );
    anyhow::ensure!(
        unchanged,
        "the restart's applies changed objects on the server"
    );
    Ok(())
}

/// One Kubernetes deployment for each tenant, `concurrency` calls at a time.
async fn provision_all(world: &World, tenants: &[Uuid], concurrency: usize) -> anyhow::Result<()> {
    let client = OrchestrationServiceClient::connect(format!("http://{}", world.addr)).await?;
    futures::stream::iter(tenants.iter().copied())
        .map(|tenant| {
            let mut client = client.clone();
            let token = world.env.token(Some(tenant), Role::Owner);
            async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let request = api::ProvisionRequest {
                        tenant_id: tenant.to_string(),
                        spec: Some(spec()),
                        deployment_id: String::new(),
                        secrets: Default::default(),
                    };
                    match client.provision(authed(request, &token)).await {
                        Ok(_) => return Ok(()),
                        // The service has not read the tenant's plan yet.
                        Err(s)
                            if s.code() == tonic::Code::FailedPrecondition
                                && Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(s) => anyhow::bail!("Provision for {tenant}: {s:?}"),
                    }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<()>()
        .await
}

fn spec() -> pb::DeploymentSpec {
    pb::DeploymentSpec {
        name: "shop".into(),
        runtime: "kubernetes".into(),
        image: "registry.example/shop".into(),
        version: "1.4.2".into(),
        replicas: 2,
        port: 8080,
        health: Some(pb::HealthProbe {
            path: "/".into(),
            ..Default::default()
        }),
        autoscaling: Some(pb::AutoscalingSpec {
            enabled: true,
            min_replicas: 1,
            max_replicas: 4,
            target_cpu_percent: 50,
        }),
        ..Default::default()
    }
}

/// One apply request: its path and body.
type Apply = (String, Vec<u8>);

/// The same apply requests sent again by a plain client: each path's object as stored,
/// `CONCURRENT_TENANTS` tenants (namespaces) at once, each tenant's requests in the order
/// the service sent them. Answers the time they took.
async fn floor(stand_in: &KubeApi, paths: &[String]) -> anyhow::Result<Duration> {
    let mut by_tenant: Vec<(String, Vec<Apply>)> = Vec::new();
    for path in paths {
        let object = stand_in
            .applied_at(path)
            .await
            .with_context(|| format!("no object at {path}"))?;
        let namespace = namespace_of(path);
        let body = serde_json::to_vec(&object)?;
        match by_tenant.iter_mut().find(|(ns, _)| *ns == namespace) {
            Some((_, requests)) => requests.push((path.clone(), body)),
            None => by_tenant.push((namespace, vec![(path.clone(), body)])),
        }
    }
    tenantry_kit::install_crypto();
    let http = reqwest::Client::new();
    let base = format!("http://{}", stand_in.addr);
    let started = Instant::now();
    futures::stream::iter(by_tenant)
        .map(|(_, requests)| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                for (path, body) in requests {
                    let answer = http
                        .patch(format!(
                            "{base}{path}?fieldManager=tenantry-orchestration&force=true"
                        ))
                        .header("content-type", "application/apply-patch+yaml")
                        .body(body)
                        .send()
                        .await?;
                    anyhow::ensure!(
                        answer.status().is_success(),
                        "apply {path}: {}",
                        answer.status()
                    );
                }
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENT_TENANTS)
        .try_collect::<()>()
        .await?;
    Ok(started.elapsed())
}

/// The tenant's namespace an apply path belongs to (a namespace's own path names it last).
fn namespace_of(path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    segments
        .iter()
        .position(|s| *s == "namespaces")
        .and_then(|i| segments.get(i + 1))
        .map_or_else(String::new, |ns| (*ns).to_owned())
}

/// Polls `done` every 20 ms until it holds; fails after `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, done: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
