//! What the orchestration figures share: the release `tenantry-orchestration` binary started
//! in the bench's world (its own stream prefix, JWKS and state directory), tenants given a
//! plan that allows dedicated instances, and the cleanup of every instance it started.

use std::path::PathBuf;
use std::time::Duration;

use tenantry_bench::{spawn_binary, world_env};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_eventstore::EventStore;
use tenantry_orchestration::runtime::process::ProcessRuntime;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::TestEnv;
use uuid::Uuid;

/// The catalog's image the bench provisions: Python's `http.server`, as the service's tests
/// run.
pub const WEB: &str = "web";

/// The orchestration binary in its own process, and the world it runs in. Dropping it stops
/// the service, kills every instance recorded in its state directory (they outlive the
/// service by design) and deletes the directory; the world's streams go with `env`.
pub struct World {
    pub env: TestEnv,
    pub store: EventStore,
    pub addr: std::net::SocketAddr,
    pub service: tokio::process::Child,
    pub state_dir: PathBuf,
    /// The service's environment, to start it again ([`World::restart`]).
    envs: Vec<(&'static str, String)>,
}

/// The Python interpreter's own path: an instance's environment is cleared, and a version
/// manager's shim needs more of it than `PATH`.
pub fn python() -> anyhow::Result<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()?;
    anyhow::ensure!(out.status.success(), "python3 does not run");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// The web program with its arguments, `{port}` standing for the instance's port; it serves
/// `www`, an empty directory (a listing of a few bytes).
pub fn web_program(www: &std::path::Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(www)?;
    Ok(vec![
        python()?,
        "-m".into(),
        "http.server".into(),
        "{port}".into(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--directory".into(),
        www.display().to_string(),
    ])
}

impl World {
    /// A new world with the orchestration binary started in it, its settings at their
    /// defaults except `envs` (`TENANTRY_ORCHESTRATION_*`).
    pub async fn start(envs: &[(&'static str, String)]) -> anyhow::Result<Self> {
        let env = TestEnv::new().await;
        let store = env.event_store().await;
        let state_dir = std::env::temp_dir().join(&env.id).join("orchestration");
        let common = env.common();
        // Under the world's directory, deleted with it.
        let master_key = state_dir.with_file_name("orchestration-master.key");
        tenantry_kit::seal::master::create_if_missing(&master_key)?;
        let mut all = world_env(&common);
        all.extend([
            ("TENANTRY_JWKS", common.jwks.clone()),
            ("TENANTRY_DATABASE_URL", common.database_url.clone()),
            (
                "TENANTRY_ORCHESTRATION_DB_SCHEMA",
                env.schema("orchestration"),
            ),
            (
                "TENANTRY_ORCHESTRATION_STATE_DIR",
                state_dir.display().to_string(),
            ),
            (
                "TENANTRY_ORCHESTRATION_MASTER_KEY_FILE",
                master_key.display().to_string(),
            ),
        ]);
        all.extend(envs.iter().cloned());
        let started = spawn(&all).await;
        let (addr, service) = match started {
            Ok(s) => s,
            Err(e) => {
                cleanup(&env).await;
                return Err(e);
            }
        };
        Ok(Self {
            env,
            store,
            addr,
            service,
            state_dir,
            envs: all,
        })
    }

    /// Kills the service (its instances run on, as after a crash) and starts it again in the
    /// same world with the same settings; answers when the new process was spawned.
    pub async fn restart(&mut self) -> anyhow::Result<std::time::Instant> {
        let _ = self.service.kill().await;
        let spawned = std::time::Instant::now();
        let (addr, service) = spawn(&self.envs).await?;
        self.addr = addr;
        self.service = service;
        Ok(spawned)
    }

    /// `count` new tenants whose plan allows one dedicated instance each (billing's part).
    pub async fn tenants(&self, count: usize) -> anyhow::Result<Vec<Uuid>> {
        let mut tenants = Vec::with_capacity(count);
        for _ in 0..count {
            let tenant = Uuid::now_v7();
            let limits = SubscriptionEvent::PlanLimitsChanged(pb::PlanLimitsChanged {
                plan: "enterprise".into(),
                dedicated_instances: 1,
                ..Default::default()
            });
            tenantry_testkit::append(
                &self.store,
                &tenant.to_string(),
                &tenant.to_string(),
                limits,
            )
            .await?;
            tenants.push(tenant);
        }
        Ok(tenants)
    }

    /// The service's resident memory (`VmRSS`), in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        let pid = self
            .service
            .id()
            .ok_or_else(|| anyhow::anyhow!("the service exited"))?;
        rss_of(pid)
    }

    /// Stops the service and its instances, and deletes the world.
    pub async fn finish(mut self) {
        let _ = self.service.kill().await;
        self.kill_instances();
        cleanup(&self.env).await;
    }

    fn kill_instances(&self) {
        // An instance may be started by a pass under way while the service stops: kill until
        // none is left.
        for _ in 0..5 {
            let pids = ProcessRuntime::recorded_pids(&self.state_dir);
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(world_dir) = self.state_dir.parent() {
            let _ = std::fs::remove_dir_all(world_dir);
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Interrupted: the service is killed by `kill_on_drop`; its instances are not.
        let _ = self.service.start_kill();
        self.kill_instances();
    }
}

async fn spawn(
    envs: &[(&str, String)],
) -> anyhow::Result<(std::net::SocketAddr, tokio::process::Child)> {
    spawn_binary(
        "tenantry-orchestration",
        "TENANTRY_ORCHESTRATION_LISTEN",
        envs,
    )
    .await
}

/// `VmRSS` of `pid`, in bytes.
pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for {pid}"))?;
    Ok(kib * 1024)
}

/// Deletes the bench's world now, unless `TENANTRY_TEST_KEEP` asks to keep it for a look.
pub async fn cleanup(env: &TestEnv) {
    if std::env::var_os("TENANTRY_TEST_KEEP").is_none() {
        env.cleanup().await;
    }
}

/// The system's load averages (1, 5 and 15 minutes), to print beside a figure: other work on
/// a shared machine moves it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
