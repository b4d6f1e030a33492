//! A gateway in-process on the real NATS and Redis, tenants' and billing's events appended
//! to the log through their contracts (as the tenant service and billing write them),
//! upstream HTTP servers on loopback, and a client that reaches tenants by host name.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::{
    AggregateAddress, AppendRequest, CommandMeta, EventPayload, aggregate::batch_of,
};
use tenantry_gateway::{GatewayConfig, GatewayService};
use tenantry_kit::Role;
use tenantry_kit::service::{Running, Service};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as api, gateway_config_service_client::GatewayConfigServiceClient,
};
use tenantry_testkit::TestEnv;
use tonic::transport::Channel;
use uuid::Uuid;

/// A running gateway.
pub type Gateway = Running<tenantry_gateway::Handle>;

pub struct Harness {
    pub gateway: Gateway,
    pub config: GatewayConfigServiceClient<Channel>,
    /// Last: dropping it stops the gateways and deletes the world.
    pub env: TestEnv,
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut GatewayConfig)) -> Harness {
    start_with_common(|_| {}, adjust).await
}

/// [`start_with`], with the settings every service shares adjusted too (the ports' connection
/// limits, say); loopback stays allowed for the tests' upstreams.
pub async fn start_with_common(
    adjust_common: impl FnOnce(&mut tenantry_kit::config::CommonConfig),
    adjust: impl FnOnce(&mut GatewayConfig),
) -> Harness {
    start_full(
        |c| {
            allow_loopback(c);
            adjust_common(c);
        },
        adjust,
        None,
    )
    .await
}

/// The networks of the upstreams tests start (loopback), for the outbound policy.
pub fn loopback() -> tenantry_kit::egress::Networks {
    "127.0.0.0/8,::1/128".parse().unwrap()
}

/// Tests' upstreams listen on loopback, which the default outbound policy refuses.
pub fn allow_loopback(common: &mut tenantry_kit::config::CommonConfig) {
    common.egress_allow = loopback();
}

/// With the shared settings (the outbound policy) as `adjust_common` leaves them, and the
/// gateway resolving backends' names with `resolver` (the system's when `None`).
pub async fn start_full(
    adjust_common: impl FnOnce(&mut tenantry_kit::config::CommonConfig),
    adjust: impl FnOnce(&mut GatewayConfig),
    resolver: Option<Arc<dyn tenantry_kit::egress::Resolver>>,
) -> Harness {
    let mut gateway_config = GatewayConfig::ephemeral();
    adjust(&mut gateway_config);
    let env = TestEnv::new().await;
    let mut common = env.common();
    adjust_common(&mut common);
    let gateway = env
        .start_with(
            &common,
            GatewayService {
                resolver,
                ..GatewayService::new(gateway_config)
            },
        )
        .await;
    let config = GatewayConfigServiceClient::new(tenantry_testkit::channel(gateway.addr).await);
    Harness {
        gateway,
        config,
        env,
    }
}

/// Sends `request` and reads the answer's body as text.
pub async fn text_of(request: reqwest::RequestBuilder) -> String {
    let response = request.send().await.expect("the gateway answers");
    response.text().await.expect("a text body")
}

pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A tenant of the tenant service: its id, slug and gateway host.
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub host: String,
}

impl Harness {
    /// Waits until the gateway's snapshot holds the log up to `position`.
    pub async fn applied(&self, position: u64) {
        let mut rx = self.gateway.applied.clone();
        tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|p| p.is_some_and(|p| p >= position)),
        )
        .await
        .expect("the gateway applies the event within 5 s")
        .unwrap();
    }

    /// A new tenant, created on the log as the tenant service creates one.
    pub async fn tenant(&self) -> Tenant {
        let slug = format!("t{}", &Uuid::new_v4().simple().to_string()[..10]);
        let id = Uuid::now_v7();
        let tenant = Tenant {
            id,
            host: format!("{slug}.localhost"),
            slug: slug.clone(),
        };
        let created = TenantEvent::Created(pb::TenantCreated {
            tenant_id: id.to_string(),
            name: slug.clone(),
            slug,
            r#type: pb::TenantType::Business as i32,
            ..Default::default()
        });
        self.append(&tenant, &id.to_string(), &created).await;
        tenant
    }

    /// Appends a tenant-service event about `tenant` (suspension, domains), as that service
    /// would, and waits until the gateway applies it.
    pub async fn tenant_event(&self, tenant: &Tenant, event: TenantEvent) -> u64 {
        self.append(tenant, &tenant.id.to_string(), &event).await
    }

    pub fn member(&self, tenant: &Tenant) -> String {
        self.env.token(Some(tenant.id), Role::Member)
    }

    /// Upserts a route and waits until the gateway applies it.
    pub async fn route(&self, tenant: &Tenant, route: api::Route) -> api::Route {
        let r = self
            .config
            .clone()
            .upsert_route(authed(
                api::UpsertRouteRequest { route: Some(route) },
                &self.member(tenant),
            ))
            .await
            .expect("upsert route")
            .into_inner();
        self.applied(r.position).await;
        r.route.unwrap()
    }

    /// Upserts a route as a member of `tenant`; the answer as it comes (nothing awaited).
    pub async fn try_route(
        &self,
        tenant: &Tenant,
        route: api::Route,
    ) -> Result<api::UpsertRouteResponse, tonic::Status> {
        self.config
            .clone()
            .upsert_route(authed(
                api::UpsertRouteRequest { route: Some(route) },
                &self.member(tenant),
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Drains `backend` of the tenant's route and waits until the gateway applies it.
    pub async fn drain(&self, tenant: &Tenant, route_id: &str, backend: SocketAddr) {
        let drained = self
            .config
            .clone()
            .drain_backend(authed(
                api::DrainBackendRequest {
                    route_id: route_id.into(),
                    address: backend.to_string(),
                },
                &self.member(tenant),
            ))
            .await
            .expect("drain backend")
            .into_inner();
        self.applied(drained.position).await;
    }

    /// What the gateway's operator port serves on `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.gateway.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Appends a billing `subscription` event for `tenant`, as billing will.
    pub async fn billing(&self, tenant: &Tenant, event: SubscriptionEvent) -> u64 {
        self.append(tenant, &tenant.id.to_string(), &event).await
    }

    /// Appends another service's event for `tenant` (as that service would) and waits until
    /// the gateway applies it.
    pub async fn append<E: EventPayload>(
        &self,
        tenant: &Tenant,
        aggregate_id: &str,
        event: &E,
    ) -> u64 {
        let store = self.env.event_store().await;
        let address =
            AggregateAddress::for_events::<E>(tenant.id.to_string(), aggregate_id).unwrap();
        let meta = CommandMeta {
            command_id: Uuid::now_v7().to_string(),
            actor: "test".into(),
            correlation_id: Uuid::now_v7().to_string(),
            occurred_at: chrono::Utc::now(),
            traceparent: None,
            fingerprint: None,
        };
        let outcome = store
            .append(AppendRequest {
                address: address.clone(),
                expected: None,
                message_id: meta.command_id.clone(),
                batch: batch_of(&address, std::slice::from_ref(event), &meta),
                traceparent: None,
                fingerprint: None,
            })
            .await
            .unwrap();
        self.applied(outcome.position).await;
        outcome.position
    }

    /// Another gateway replica on the same log and the same Redis namespace.
    pub async fn replica(&self, adjust: impl FnOnce(&mut GatewayConfig)) -> Gateway {
        let mut config = GatewayConfig::ephemeral();
        adjust(&mut config);
        let mut common = self.env.common();
        allow_loopback(&mut common);
        self.env
            .start_with(&common, GatewayService::new(config))
            .await
    }

    /// An HTTP client that reaches `host` at `gateway`'s data plane, and the URL of `path`.
    pub fn client_to(gateway: &Gateway, host: &str, path: &str) -> (reqwest::Client, String) {
        let client = reqwest::Client::builder()
            .resolve(host, gateway.data_addr)
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        (
            client,
            format!("http://{host}:{}{path}", gateway.data_addr.port()),
        )
    }

    /// An HTTP client that reaches `host` at the gateway's data plane.
    pub fn client(&self, host: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(host, self.gateway.data_addr)
            .pool_max_idle_per_host(16)
            .build()
            .unwrap()
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.gateway.data_addr.port())
    }
}

pub fn route(
    prefix: &str,
    algorithm: pb::BalanceAlgorithm,
    backends: &[(&Upstream, u32)],
) -> api::Route {
    api::Route {
        path_prefix: prefix.into(),
        algorithm: algorithm as i32,
        backends: backends
            .iter()
            .map(|(u, w)| pb::Backend {
                address: u.addr.to_string(),
                weight: *w,
            })
            .collect(),
        ..Default::default()
    }
}

/// An upstream HTTP server answering with its name and counting requests.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// What `/health` answers: 200 while true, 503 after.
    pub healthy: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        Self::start_with(name, Duration::ZERO).await
    }

    /// Answers after `delay` (for in-flight and least-connections tests).
    pub async fn start_with(name: &str, delay: Duration) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (n, h) = (name.to_owned(), hits.clone());
        let up = healthy.clone();
        let app = axum::Router::new()
            .route(
                "/ws",
                axum::routing::get(|ws: axum::extract::ws::WebSocketUpgrade| async move {
                    ws.on_upgrade(|mut socket| async move {
                        while let Some(Ok(message)) = socket.recv().await {
                            if socket.send(message).await.is_err() {
                                break;
                            }
                        }
                    })
                }),
            )
            .route(
                "/echo",
                axum::routing::post(|body: bytes::Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/stream",
                // Chunked: no declared length, so the gateway counts the bytes as they pass.
                axum::routing::get(|| async {
                    let chunks =
                        ["abc", "defg"].map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
                    axum::body::Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/health",
                axum::routing::get(move || {
                    let up = up.load(Ordering::Relaxed);
                    async move {
                        if up {
                            http::StatusCode::OK
                        } else {
                            http::StatusCode::SERVICE_UNAVAILABLE
                        }
                    }
                }),
            )
            .fallback(
                move |version: http::Version, headers: http::HeaderMap, uri: http::Uri| {
                    let (n, h) = (n.clone(), h.clone());
                    async move {
                        h.fetch_add(1, Ordering::Relaxed);
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let get = |k: &str| {
                            headers
                                .get(k)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        format!(
                            "{n} {} ver={version:?} xfp={} xff={} xfh={} fwd={} rid={} real={} tci={}",
                            uri.path(),
                            get("x-forwarded-proto"),
                            get("x-forwarded-for"),
                            get("x-forwarded-host"),
                            get("forwarded"),
                            get("x-request-id"),
                            get("x-real-ip"),
                            get("true-client-ip")
                        )
                    }
                },
            );
        // Connections live in a set the accept loop owns: killing the server closes them too.
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                connections.spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
                });
            }
        });
        Self {
            name: name.into(),
            addr,
            hits,
            healthy,
            task,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Stops accepting and closes the listener (a dead backend).
    pub fn kill(&self) {
        self.task.abort();
    }
}

/// In `/metrics` text, the value of the first series named `name` whose labels hold every
/// one of `labels`.
pub fn metric_value(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits until `gateway`'s snapshot holds the log up to `position`.
pub async fn applied_on(gateway: &Gateway, position: u64) {
    let mut rx = gateway.applied.clone();
    tokio::time::timeout(
        Duration::from_secs(5),
        rx.wait_for(|p| p.is_some_and(|p| p >= position)),
    )
    .await
    .expect("the replica applies the event within 5 s")
    .unwrap();
}

/// Responses by outcome, counted as they arrive.
#[derive(Default)]
pub struct Outcomes {
    pub ok: AtomicUsize,
    pub limited: AtomicUsize,
    pub other: AtomicUsize,
}

impl Outcomes {
    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }
    pub fn limited(&self) -> usize {
        self.limited.load(Ordering::Relaxed)
    }
    pub fn other(&self) -> usize {
        self.other.load(Ordering::Relaxed)
    }
}

/// Offers `rate` requests per second, evenly paced (a late tick is made up at once, so the
/// count offered is exact), to `url` for `duration`; returns when every response is in, with
/// the time from the first request sent to the last.
pub async fn offer(
    client: reqwest::Client,
    url: String,
    rate: u32,
    duration: Duration,
    outcomes: Arc<Outcomes>,
) -> Duration {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut sent = tokio::task::JoinSet::new();
    let mut first = None;
    for _ in 0..total {
        tick.tick().await;
        first.get_or_insert_with(std::time::Instant::now);
        let (client, url, outcomes) = (client.clone(), url.clone(), outcomes.clone());
        sent.spawn(async move {
            let counter = match client.get(url).send().await.map(|r| r.status().as_u16()) {
                Ok(200) => &outcomes.ok,
                Ok(429) => &outcomes.limited,
                _ => &outcomes.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
    let span = first.map_or(Duration::ZERO, |f| f.elapsed());
    while sent.join_next().await.is_some() {}
    span
}

/// A Redis server of a test's own on a free port (to stop and start it), keeping nothing.
pub struct RedisServer {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("tenantry-redis-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is answered, as when
    /// Redis's host is saturated; [`RedisServer::unpause`] lets it answer again.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn unpause(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// Starts it again on the same port, empty; returns once it answers.
    pub async fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/infra-up.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not start on {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A NATS server of a test's own (JetStream on, its store in a temporary directory) on a free
/// port, to stop and start again: the shared server must stay up for every other test. It has
/// no authentication (the gateway's credentials are ignored there); the users' permissions are
/// tested on the shared server (tests/integration/tests/attacks_bus.rs).
pub struct NatsServer {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("tenantry-nats-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would); its store stays for [`NatsServer::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port and store; returns once it accepts connections.
    pub async fn resume(&mut self) {
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server runs (scripts/infra-up.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("nats-server did not start on {}", self.port);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
