//! Starting the orchestration service in-process for a test, on the real NATS, with the
//! process runtime running real child processes (Python's `http.server` as the tenant's
//! program), and playing billing's part (a tenant's plan limits on the log).
//!
//! Every process a test starts is killed when its harness is dropped, even by a panic: the
//! [`Harness`] stops its services, then kills every pid recorded in its state directory.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_kit::Role;
use tenantry_kit::service::{Running, StopHandle};
use tenantry_orchestration::domain::deployment;
use tenantry_orchestration::feed::FeedConfig;
use tenantry_orchestration::runtime::process::ProcessRuntime;
use tenantry_orchestration::{Handle, OrchestrationConfig, OrchestrationService};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use tenantry_proto::orchestration::v1::{self as api};
use tenantry_testkit::TestEnv;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

/// The catalog's image the tests run.
pub const WEB: &str = "web";
/// An image that answers `/` and, on `/burn?seconds=N`, keeps one core busy for N seconds;
/// `/env/NAME` answers the value of its environment variable NAME (404 if unset).
pub const BURN: &str = "burn";

const BURN_PY: &str = r#"
import http.server, os, sys, threading, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/env/"):
            value = os.environ.get(self.path[5:])
            body = (value or "").encode()
            self.send_response(200 if value is not None else 404)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/burn"):
            seconds = float(self.path.split("=", 1)[1]) if "=" in self.path else 3.0
            def burn():
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    pass
            threading.Thread(target=burn, daemon=True).start()
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

/// The burn program's script, in the test world's directory (deleted with it). Written whole
/// and renamed into place, so an instance started meanwhile never reads half of it.
fn burn_script(dir: &std::path::Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("burn.py");
    let tmp = path.with_extension(format!(
        "{}.{}.tmp",
        std::process::id(),
        Uuid::now_v7().simple()
    ));
    std::fs::write(&tmp, BURN_PY).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

pub struct Harness {
    pub svc: Running<Handle>,
    pub channel: Channel,
    pub state_dir: PathBuf,
    stops: Vec<StopHandle>,
    pub env: TestEnv,
    /// The kubeconfig the `kubernetes` runtime uses, when enabled.
    pub kubeconfig: Option<PathBuf>,
}

/// The Python interpreter's own path: the instance's environment is cleared, and a version
/// manager's shim (pyenv) needs more of it than `PATH`.
fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 runs");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn config(state_dir: PathBuf) -> OrchestrationConfig {
    let serve = std::env::temp_dir();
    let burn = burn_script(state_dir.parent().unwrap_or(&state_dir));
    OrchestrationConfig::ephemeral(
        state_dir,
        vec![
            format!(
                "{WEB}={} -m http.server {{port}} --bind 127.0.0.1 --directory {}",
                python(),
                serve.display()
            ),
            format!("{BURN}={} {} {{port}}", python(), burn.display()),
        ],
    )
}

pub async fn start() -> Harness {
    start_with(None).await
}

/// A service with the `kubernetes` runtime on the cluster `kubeconfig` names (the stand-in's
/// or a real one).
pub async fn start_with(kubeconfig: Option<PathBuf>) -> Harness {
    let env = TestEnv::new().await;
    // Under the world's own directory, which the world deletes when it ends.
    let state_dir = std::env::temp_dir().join(&env.id).join("orchestration");
    let svc = start_on(&env, &state_dir, kubeconfig.as_deref()).await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    Harness {
        stops: vec![svc.stop_handle()],
        svc,
        channel,
        state_dir,
        env,
        kubeconfig,
    }
}

pub async fn start_on(
    env: &TestEnv,
    state_dir: &std::path::Path,
    kubeconfig: Option<&std::path::Path>,
) -> Running<Handle> {
    let mut config = config(state_dir.to_path_buf());
    config.kubernetes = kubeconfig.map(|p| p.display().to_string());
    env.start(OrchestrationService {
        config,
        clock: Arc::new(tenantry_kit::SystemClock),
        feed: FeedConfig {
            buffer: 8,
            auth_timeout: Duration::from_millis(500),
            ..FeedConfig::default()
        },
    })
    .await
}

/// Attaches a bearer token to a request.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

pub fn spec(replicas: i32) -> pb::DeploymentSpec {
    pb::DeploymentSpec {
        name: "web".into(),
        runtime: "process".into(),
        image: WEB.into(),
        version: "1.0.0".into(),
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

impl Harness {
    pub fn client(&self) -> OrchestrationServiceClient<Channel> {
        OrchestrationServiceClient::new(self.channel.clone())
    }

    pub fn token(&self, tenant: Uuid, role: Role) -> String {
        self.env.token(Some(tenant), role)
    }

    /// A new tenant whose plan allows `dedicated` deployments (as billing would say it).
    pub async fn tenant(&self, dedicated: u32) -> Uuid {
        let tenant = Uuid::now_v7();
        let store = self.env.event_store().await;
        let event = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
            plan: "enterprise".into(),
            dedicated_instances: dedicated,
            ..Default::default()
        });
        let position =
            tenantry_testkit::append(&store, &tenant.to_string(), &tenant.to_string(), event)
                .await
                .unwrap();
        assert!(
            self.svc
                .plans
                .applied(position, Duration::from_secs(10))
                .await,
            "the plan directory applied position {position}"
        );
        tenant
    }

    pub async fn provision(
        &self,
        tenant: Uuid,
        spec: pb::DeploymentSpec,
    ) -> Result<api::ProvisionResponse, tonic::Status> {
        self.client()
            .provision(with_token(
                api::ProvisionRequest {
                    tenant_id: tenant.to_string(),
                    spec: Some(spec),
                    deployment_id: String::new(),
                    secrets: Default::default(),
                },
                &self.token(tenant, Role::Owner),
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn try_deployment(
        &self,
        tenant: Uuid,
        id: &str,
    ) -> Result<api::Deployment, tonic::Status> {
        self.client()
            .get_deployment(with_token(
                api::GetDeploymentRequest {
                    tenant_id: tenant.to_string(),
                    deployment_id: id.into(),
                    min_position: 0,
                },
                &self.token(tenant, Role::Viewer),
            ))
            .await
            .map(|r| r.into_inner().deployment.unwrap())
    }

    pub async fn deployment(&self, tenant: Uuid, id: &str) -> api::Deployment {
        self.try_deployment(tenant, id)
            .await
            .unwrap_or_else(|e| panic!("GetDeployment: {e:?}"))
    }

    /// Waits until the deployment satisfies `check`.
    pub async fn deployment_where(
        &self,
        tenant: Uuid,
        id: &str,
        what: &str,
        check: impl Fn(&api::Deployment) -> bool,
    ) -> api::Deployment {
        // Read without `min_position`: a deployment just provisioned may not be read yet.
        tenantry_testkit::eventually(what, Duration::from_secs(20), || async {
            let d = self.try_deployment(tenant, id).await.ok()?;
            check(&d).then_some(d)
        })
        .await
    }

    /// The deployment's events on the log, in order.
    pub async fn events(&self, tenant: Uuid, id: &str) -> Vec<DeploymentEvent> {
        let store = self.env.event_store().await;
        let address = deployment::address(tenant, id.parse().unwrap()).unwrap();
        store
            .read_aggregate(&address, 0)
            .await
            .unwrap()
            .iter()
            .flat_map(|m| m.events::<DeploymentEvent>().unwrap())
            .map(|s| s.event)
            .collect()
    }

    /// A second service on the same world and state directory (the first one stopped).
    pub async fn restart(&mut self) {
        self.svc.stop();
        let stopped = std::mem::replace(
            &mut self.svc,
            start_on(&self.env, &self.state_dir, self.kubeconfig.as_deref()).await,
        );
        let _ = stopped.task.await;
        self.stops.push(self.svc.stop_handle());
        self.channel = tenantry_testkit::channel(self.svc.addr).await;
    }

    /// Instances whose process runs, per the runtime's records.
    pub fn running_pids(&self) -> Vec<u32> {
        ProcessRuntime::recorded_pids(&self.state_dir)
    }
}

/// Every instance's deployment has `healthy` healthy instances and no other.
pub fn healthy(d: &api::Deployment, count: usize) -> bool {
    d.instances.len() == count && d.instances.iter().all(|i| i.healthy)
}

pub fn kill9(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

impl Drop for Harness {
    fn drop(&mut self) {
        for stop in &self.stops {
            stop.stop();
        }
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
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// A new deployment of `tenant` is accepted once the service has read the log's latest.
pub async fn eventually_provisions(h: &Harness, tenant: Uuid) -> api::ProvisionResponse {
    tenantry_testkit::eventually(
        "a provisioning accepted",
        Duration::from_secs(10),
        || async { h.provision(tenant, spec(0)).await.ok() },
    )
    .await
}
