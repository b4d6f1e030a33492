//! Dedicated instances behind the gateway: a route whose backend is a deployment reaches its
//! ready instances, follows them through a crash, a rolling update under load and a drain
//! without failing a request, and never reaches another tenant's deployment. Real NATS, the
//! gateway and the orchestration service in-process, the process runtime running real child
//! processes (a small Python HTTP server that finishes its requests on SIGTERM). And the
//! orchestration feed's WebSocket through the gateway's API edge.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_contracts::gateway::RouteEvent;
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::EventPayload;
use tenantry_kit::Role;
use tenantry_kit::service::{Running, Service};
use tenantry_orchestration::runtime::process::ProcessRuntime;
use tenantry_orchestration::{OrchestrationConfig, OrchestrationService};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as gw, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_proto::orchestration::v1::{
    self as orch, orchestration_service_client::OrchestrationServiceClient,
};
use tenantry_testkit::TestEnv;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

/// Answers `/` at once and `/slow?s=N` after N seconds, with its version and instance id; on
/// SIGTERM it stops accepting and exits once the requests it holds are answered.
const APP_PY: &str = r#"
import http.server, os, signal, sys, threading, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.split("=", 1)[1]))
        body = (os.environ["TENANTRY_VERSION"] + " " + os.environ["TENANTRY_INSTANCE_ID"]).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
"#;

/// The Python interpreter's own path (the instance's environment is cleared).
fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

struct World {
    orchestration: Running<tenantry_orchestration::Handle>,
    gateway: Running<tenantry_gateway::Handle>,
    deployments: OrchestrationServiceClient<Channel>,
    routes: GatewayConfigServiceClient<Channel>,
    state_dir: PathBuf,
    /// Last: dropping it deletes the world (and its directory).
    env: TestEnv,
}

struct Tenant {
    id: Uuid,
    host: String,
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn spec(version: &str, replicas: i32) -> pb::DeploymentSpec {
    pb::DeploymentSpec {
        name: "app".into(),
        runtime: "process".into(),
        image: "app".into(),
        version: version.into(),
        replicas,
        health: Some(pb::HealthProbe {
            path: "/".into(),
            interval_ms: 200,
            timeout_ms: 500,
            failure_threshold: 2,
        }),
        ..Default::default()
    }
}

/// Both services on the default outbound policy (loopback refused to tenants' backends: the
/// instances are reached because orchestration allocated their addresses).
async fn world() -> World {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("app.py");
    std::fs::write(&script, APP_PY).unwrap();
    let state_dir = dir.join("orchestration");
    let mut config = OrchestrationConfig::ephemeral(
        state_dir.clone(),
        vec![format!("app={} {} {{port}}", python(), script.display())],
    );
    // Room for a loaded machine between the gateways' hearing of a drain and the SIGTERM.
    config.deregister_delay_ms = 1_000;
    config.drain_grace_ms = 5_000;
    let orchestration = env.start(OrchestrationService::new(config)).await;
    let mut gateway_config = tenantry_gateway::GatewayConfig::ephemeral();
    gateway_config.services = format!("orchestration={}", orchestration.addr);
    let (gateway, routes) = common::start_gateway(&env, &env.common(), gateway_config).await;
    let deployments =
        OrchestrationServiceClient::new(tenantry_testkit::channel(orchestration.addr).await);
    World {
        orchestration,
        gateway,
        deployments,
        routes: GatewayConfigServiceClient::new(routes),
        state_dir,
        env,
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.orchestration.stop();
        self.gateway.stop();
        // A pass under way may still start an instance: kill until none is left.
        for _ in 0..5 {
            let pids = ProcessRuntime::recorded_pids(&self.state_dir);
            for pid in &pids {
                kill9(*pid);
            }
            std::thread::sleep(Duration::from_millis(150));
            if pids.is_empty() {
                break;
            }
        }
    }
}

fn kill9(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

impl World {
    async fn append<E: EventPayload>(&self, tenant: Uuid, aggregate: &str, event: E) -> u64 {
        let store = self.env.event_store().await;
        tenantry_testkit::append(&store, &tenant.to_string(), aggregate, event)
            .await
            .unwrap()
    }

    async fn gateway_applied(&self, position: u64) {
        let mut applied = self.gateway.applied.clone();
        tokio::time::timeout(
            Duration::from_secs(10),
            applied.wait_for(|p| p.is_some_and(|p| p >= position)),
        )
        .await
        .expect("the gateway applies the log")
        .unwrap();
    }

    /// A tenant (as the tenant service creates one) on a plan with a dedicated deployment
    /// (as billing says it), known to both services.
    async fn tenant(&self) -> Tenant {
        let id = Uuid::now_v7();
        let slug = format!("t{}", &Uuid::new_v4().simple().to_string()[..10]);
        let created = TenantEvent::Created(pb::TenantCreated {
            tenant_id: id.to_string(),
            name: slug.clone(),
            slug: slug.clone(),
            r#type: pb::TenantType::Enterprise as i32,
            ..Default::default()
        });
        self.append(id, &id.to_string(), created).await;
        let plan = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            plan: "enterprise".into(),
            dedicated_instances: 1,
            ..Default::default()
        });
        let position = self.append(id, &id.to_string(), plan).await;
        assert!(
            self.orchestration
                .plans
                .applied(position, Duration::from_secs(10))
                .await
        );
        self.gateway_applied(position).await;
        Tenant {
            id,
            host: format!("{slug}.localhost"),
        }
    }

    async fn provision(&self, tenant: &Tenant, replicas: i32) -> String {
        let owner = self.env.token(Some(tenant.id), Role::Owner);
        self.deployments
            .clone()
            .provision(authed(
                orch::ProvisionRequest {
                    tenant_id: tenant.id.to_string(),
                    spec: Some(spec("1.0.0", replicas)),
                    deployment_id: String::new(),
                    secrets: Default::default(),
                },
                &owner,
            ))
            .await
            .unwrap()
            .into_inner()
            .deployment_id
    }

    async fn deployment(&self, tenant: &Tenant, id: &str) -> orch::Deployment {
        let viewer = self.env.token(Some(tenant.id), Role::Viewer);
        self.deployments
            .clone()
            .get_deployment(authed(
                orch::GetDeploymentRequest {
                    tenant_id: tenant.id.to_string(),
                    deployment_id: id.into(),
                    min_position: 0,
                },
                &viewer,
            ))
            .await
            .unwrap()
            .into_inner()
            .deployment
            .unwrap()
    }

    async fn deployment_where(
        &self,
        tenant: &Tenant,
        id: &str,
        what: &str,
        check: impl Fn(&orch::Deployment) -> bool,
    ) -> orch::Deployment {
        tenantry_testkit::eventually(what, Duration::from_secs(30), || async {
            let d = self.deployment(tenant, id).await;
            check(&d).then_some(d)
        })
        .await
    }

    async fn try_route(&self, tenant: &Tenant, route: gw::Route) -> Result<u64, tonic::Status> {
        let member = self.env.token(Some(tenant.id), Role::Member);
        self.routes
            .clone()
            .upsert_route(authed(
                gw::UpsertRouteRequest { route: Some(route) },
                &member,
            ))
            .await
            .map(|r| r.into_inner().position)
    }

    /// The tenant's catch-all route to deployment `id`, applied by the gateway.
    async fn route_to(&self, tenant: &Tenant, id: &str) {
        let position = self
            .try_route(tenant, to_deployment(id))
            .await
            .expect("a route to the tenant's deployment");
        self.gateway_applied(position).await;
    }

    fn client(&self, tenant: &Tenant) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(&tenant.host, self.gateway.data_addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn url(&self, tenant: &Tenant, path: &str) -> String {
        format!(
            "http://{}:{}{path}",
            tenant.host,
            self.gateway.data_addr.port()
        )
    }

    /// `message` with a token of `role` in `tenant`.
    fn call<T>(&self, tenant: &Tenant, role: Role, message: T) -> tonic::Request<T> {
        authed(message, &self.env.token(Some(tenant.id), role))
    }
}

fn to_deployment(id: &str) -> gw::Route {
    gw::Route {
        path_prefix: "/".into(),
        algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
        deployment_id: id.into(),
        ..Default::default()
    }
}

fn healthy(d: &orch::Deployment, count: usize) -> bool {
    d.instances.len() == count && d.instances.iter().all(|i| i.healthy)
}

/// `GET path` through the gateway: the body on a 200, else what went wrong.
async fn get(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_through_the_gateway_reaches_the_instances_and_recovers_from_a_killed_one() {
    let w = world().await;
    let t = w.tenant().await;
    let id = w.provision(&t, 2).await;
    let first = w
        .deployment_where(&t, &id, "two healthy instances", |d| healthy(d, 2))
        .await;
    w.route_to(&t, &id).await;
    let (client, url) = (w.client(&t), w.url(&t, "/"));
    // Both instances answer through the gateway.
    let instances: BTreeSet<String> = first
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    let mut answered = BTreeSet::new();
    for _ in 0..10 {
        let body = get(&client, &url).await.unwrap();
        answered.insert(body.split(' ').nth(1).unwrap().to_owned());
    }
    assert_eq!(answered, instances);

    let victim = first.instances[0].instance_id.clone();
    let pid = w
        .orchestration
        .runtime
        .pid_of(victim.parse().unwrap())
        .unwrap();
    kill9(pid);
    // Its replacement joins the rotation; then every request succeeds again, none reaching
    // the killed one.
    let second = w
        .deployment_where(&t, &id, "a replacement, healthy", |d| {
            healthy(d, 2) && d.instances.iter().all(|i| i.instance_id != victim)
        })
        .await;
    let replacement = second
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .find(|i| !instances.contains(i))
        .unwrap();
    tenantry_testkit::eventually(
        "the replacement answers through the gateway",
        Duration::from_secs(10),
        || async {
            let body = get(&client, &url).await.ok()?;
            body.ends_with(&replacement).then_some(())
        },
    )
    .await;
    for _ in 0..20 {
        let body = get(&client, &url).await.expect("traffic recovered");
        assert!(!body.ends_with(&victim), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_under_steady_load_through_the_gateway_fails_no_request() {
    let w = world().await;
    let t = w.tenant().await;
    let id = w.provision(&t, 2).await;
    w.deployment_where(&t, &id, "two healthy instances", |d| healthy(d, 2))
        .await;
    w.route_to(&t, &id).await;
    let (client, url) = (w.client(&t), w.url(&t, "/"));
    get(&client, &url).await.unwrap();

    // Steady load: four clients, one request after another each.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (client, url, stop, ok) = (client.clone(), url.clone(), stop.clone(), ok.clone());
        load.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut versions = BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                match get(&client, &url).await {
                    Ok(body) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        versions.insert(body.split(' ').next().unwrap_or_default().to_owned());
                    }
                    Err(e) => failed.push(e),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (failed, versions)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let update = w.call(
        &t,
        Role::Member,
        orch::UpdateRequest {
            tenant_id: t.id.to_string(),
            deployment_id: id.clone(),
            spec: Some(spec("1.1.0", 2)),
            secrets: Default::default(),
        },
    );
    w.deployments.clone().update(update).await.unwrap();
    w.deployment_where(&t, &id, "two healthy instances of 1.1.0 only", |d| {
        healthy(d, 2) && d.instances.iter().all(|i| i.version == "1.1.0")
    })
    .await;
    // The old instances' processes are gone too.
    tenantry_testkit::eventually("two processes", Duration::from_secs(15), || async {
        (ProcessRuntime::recorded_pids(&w.state_dir).len() == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failed = Vec::new();
    let mut versions = BTreeSet::new();
    for task in load {
        let (f, v) = task.await.unwrap();
        failed.extend(f);
        versions.extend(v);
    }
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        served + failed.len()
    );
    assert!(served > 50, "only {served} requests during the rollout");
    assert_eq!(
        versions,
        BTreeSet::from(["1.0.0".to_owned(), "1.1.0".to_owned()]),
        "both revisions served"
    );
    // After the rollout, the new revision alone.
    for _ in 0..6 {
        assert!(get(&client, &url).await.unwrap().starts_with("1.1.0 "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_decommission_let_requests_in_flight_finish_then_the_instances_are_gone() {
    let w = world().await;
    let t = w.tenant().await;
    let id = w.provision(&t, 2).await;
    w.deployment_where(&t, &id, "two healthy instances", |d| healthy(d, 2))
        .await;
    w.route_to(&t, &id).await;
    let client = w.client(&t);
    get(&client, &w.url(&t, "/")).await.unwrap();

    // Requests that take 2 s, in flight on both instances when the drain comes.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let (client, url) = (client.clone(), w.url(&t, "/slow?s=2"));
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let drain = w.call(
        &t,
        Role::Member,
        orch::DrainRequest {
            tenant_id: t.id.to_string(),
            deployment_id: id.clone(),
            reason: "maintenance".into(),
        },
    );
    w.deployments.clone().drain(drain).await.unwrap();
    for request in slow {
        let answer = request.await.unwrap();
        assert!(answer.is_ok(), "a request in flight failed: {answer:?}");
    }
    w.deployment_where(&t, &id, "no instance", |d| d.instances.is_empty())
        .await;
    tenantry_testkit::eventually("no process", Duration::from_secs(15), || async {
        ProcessRuntime::recorded_pids(&w.state_dir)
            .is_empty()
            .then_some(())
    })
    .await;
    // Out of rotation before they stopped: each instance's `pod.draining` precedes its end.
    let store = w.env.event_store().await;
    let address =
        tenantry_orchestration::domain::deployment::address(t.id, id.parse().unwrap()).unwrap();
    let events: Vec<DeploymentEvent> = store
        .read_aggregate(&address, 0)
        .await
        .unwrap()
        .iter()
        .flat_map(|m| m.events::<DeploymentEvent>().unwrap())
        .map(|s| s.event)
        .collect();
    let deleted: Vec<&pb::PodDeleted> = events
        .iter()
        .filter_map(|e| match e {
            DeploymentEvent::PodDeleted(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 2, "{events:#?}");
    for d in deleted {
        let draining = events.iter().position(
            |e| matches!(e, DeploymentEvent::PodDraining(p) if p.instance_id == d.instance_id),
        );
        let gone = events.iter().position(
            |e| matches!(e, DeploymentEvent::PodDeleted(p) if p.instance_id == d.instance_id),
        );
        assert!(draining.is_some() && draining < gone, "{events:#?}");
        assert_eq!(d.reason, "stopped");
    }
    // The gateway has nothing left to send to.
    let answer = client.get(w.url(&t, "/")).send().await.unwrap();
    assert_eq!(answer.status(), 503);

    let decommission = w.call(
        &t,
        Role::Owner,
        orch::DecommissionRequest {
            tenant_id: t.id.to_string(),
            deployment_id: id.clone(),
            reason: "done".into(),
        },
    );
    w.deployments
        .clone()
        .decommission(decommission)
        .await
        .unwrap();
    let gone = w
        .deployment_where(&t, &id, "decommissioned", |d| {
            d.status == orch::DeploymentStatus::Decommissioned as i32
        })
        .await;
    assert_eq!(
        gone.spec.unwrap().version,
        "1.0.0",
        "the configuration is kept"
    );
}

/// Attack: a tenant points its route at another tenant's deployment, through the API and,
/// as if the API's check were bypassed, by a route event on the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_never_reaches_another_tenants_deployment() {
    let w = world().await;
    let (victim, attacker) = (w.tenant().await, w.tenant().await);
    let theirs = w.provision(&victim, 1).await;
    w.deployment_where(&victim, &theirs, "their instance healthy", |d| {
        healthy(d, 1)
    })
    .await;
    w.route_to(&victim, &theirs).await;
    assert!(get(&w.client(&victim), &w.url(&victim, "/")).await.is_ok());

    let refused = w
        .try_route(&attacker, to_deployment(&theirs))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    // Bad shapes name their field.
    let bad = w
        .try_route(&attacker, to_deployment("not-a-uuid"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("route.deployment_id"), "{bad:?}");
    let mut both = to_deployment(&theirs);
    both.backends = vec![pb::Backend {
        address: "93.184.216.34:80".into(),
        weight: 1,
    }];
    let bad = w.try_route(&attacker, both).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("route.backends"), "{bad:?}");
    // Nothing appended: the attacker has no route.
    let last = w.env.event_store().await.last_position().await.unwrap();
    w.gateway_applied(last).await;
    let listed = w
        .routes
        .clone()
        .list_routes(w.call(&attacker, Role::Viewer, gw::ListRoutesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.routes.is_empty(), "{listed:?}");

    // Even a route on the log naming their deployment reaches nothing: instances are looked
    // up under the route's own tenant.
    let route_id = Uuid::now_v7().to_string();
    let forged = RouteEvent::Upserted(pb::RouteUpserted {
        route_id: route_id.clone(),
        path_prefix: "/".into(),
        algorithm: pb::BalanceAlgorithm::RoundRobin as i32,
        deployment_id: theirs.clone(),
        ..Default::default()
    });
    let position = w.append(attacker.id, &route_id, forged).await;
    w.gateway_applied(position).await;
    let answer = w
        .client(&attacker)
        .get(w.url(&attacker, "/"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body = answer.text().await.unwrap();
    assert!(!body.contains("1.0.0"), "{body}");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket to the tenant's feed through the gateway's API edge (`Authorization` header
/// when `token`); the handshake's error when the edge or the service refuses it.
async fn feed(w: &World, tenant: Uuid, token: Option<&str>) -> Result<Socket, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!(
        "ws://{}/api/tenants/{tenant}/orchestration/events?after=0",
        w.gateway.addr
    );
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        let bearer = format!("Bearer {token}");
        request
            .headers_mut()
            .insert("authorization", bearer.parse().unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(w.gateway.addr)
        .await
        .unwrap();
    tokio_tungstenite::client_async(request, tcp)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// The next text message's `type`, or the close frame's code.
async fn next(ws: &mut Socket) -> Result<String, u16> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                return Ok(value["type"].as_str().unwrap().to_owned());
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map_or(0, |f| u16::from(f.code)));
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

async fn send_auth(ws: &mut Socket, token: &str) {
    use futures::SinkExt;
    let auth = serde_json::json!({ "type": "auth", "token": token }).to_string();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(auth.into()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_through_the_api_edge_takes_a_header_or_a_first_message_and_refuses_other_tenants()
{
    let w = world().await;
    let (t, other) = (w.tenant().await, w.tenant().await);
    let viewer = w.env.token(Some(t.id), Role::Viewer);
    // A deployment without instances: its provisioning is on the tenant's feed.
    w.provision(&t, 0).await;

    // By header, checked at the edge, then by the service.
    let mut by_header = feed(&w, t.id, Some(&viewer)).await.unwrap();
    assert_eq!(next(&mut by_header).await.unwrap(), "subscribed");
    assert_eq!(
        next(&mut by_header).await.unwrap(),
        "deployment.provisioned"
    );

    // By a first message, as a browser does: the edge lets the upgrade through without a
    // header and the service reads the message through the splice.
    let mut by_message = feed(&w, t.id, None).await.unwrap();
    send_auth(&mut by_message, &viewer).await;
    assert_eq!(next(&mut by_message).await.unwrap(), "subscribed");
    assert_eq!(
        next(&mut by_message).await.unwrap(),
        "deployment.provisioned"
    );

    // Live events reach both sockets through the edge.
    let d = w
        .deployments
        .clone()
        .list_deployments(w.call(
            &t,
            Role::Viewer,
            orch::ListDeploymentsRequest {
                tenant_id: t.id.to_string(),
                min_position: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .deployments
        .remove(0);
    w.deployments
        .clone()
        .drain(w.call(
            &t,
            Role::Member,
            orch::DrainRequest {
                tenant_id: t.id.to_string(),
                deployment_id: d.deployment_id,
                reason: "live".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(next(&mut by_header).await.unwrap(), "deployment.drained");
    assert_eq!(next(&mut by_message).await.unwrap(), "deployment.drained");

    // Another tenant's token: closed with 4403, by header and by message.
    let foreign = w.env.token(Some(other.id), Role::Viewer);
    let mut theirs = feed(&w, t.id, Some(&foreign)).await.unwrap();
    assert_eq!(next(&mut theirs).await, Err(4403));
    let mut theirs = feed(&w, t.id, None).await.unwrap();
    send_auth(&mut theirs, &foreign).await;
    assert_eq!(next(&mut theirs).await, Err(4403));

    // A bad token in a header stops at the edge, before any upgrade.
    let refused = feed(&w, t.id, Some("not-a-token")).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
}
