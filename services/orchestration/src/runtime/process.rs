//! The `process` runtime: each instance is a child process on this machine.
//!
//! - **What runs.** Only programs the operator listed in the catalog
//!   (`--orchestration-process-image name=program arg…`); a spec names a catalog entry as its
//!   `image`, never a command, so a tenant cannot run anything else on the host. The program
//!   gets a clean environment: `PATH`, the spec's variables, `PORT` (a free loopback port
//!   allocated for it; `{port}` in the entry's arguments is replaced by it too) and
//!   `TENANTRY_TENANT_ID`, `TENANTRY_DEPLOYMENT_ID`, `TENANTRY_INSTANCE_ID`, `TENANTRY_VERSION`.
//!   Its output goes to `<state dir>/<instance>.log`. It runs in its own process group, so a
//!   Ctrl-C of `tenantry dev` does not reach it.
//! - **Records.** Each instance has `<state dir>/<instance>.json` (ids, revision, port, pid
//!   and the pid's start time), written before the instance is reported and removed when it is
//!   forgotten. At start the runtime reads them back: a process still alive (same pid, same
//!   start time, so a reused pid is not mistaken for it) is adopted; one that is gone is
//!   reported exited, so its end reaches the log.
//! - **Health.** A supervisor task per instance probes it over HTTP every `interval_ms`:
//!   `Starting` until the first success, then `Healthy`, `Unhealthy` after
//!   `failure_threshold` failures in a row. Until its first success (for at most 10 s) a
//!   starting instance is probed every 50 ms instead, as Kubernetes' startup probe does. It notices the exit of a child at once (and of an
//!   adopted process at its next probe).
//! - **Stop.** SIGTERM (the program drains and exits), then SIGKILL after the grace.
//!   Signals are sent with `kill(1)`: the crate forbids `unsafe`, which `libc::kill` needs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenantry_proto::events::v1 as pb;
use tokio::sync::watch;
use uuid::Uuid;

use super::{BoxFuture, Health, Observed, Runtime, RuntimeError, Target, probe};

/// A program of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub program: String,
    pub args: Vec<String>,
}

impl Program {
    /// `name=program arg arg…` (arguments split on whitespace).
    pub fn parse_entry(entry: &str) -> Result<(String, Program), String> {
        let (name, command) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?}: expected name=program [args]"))?;
        let mut words = command.split_whitespace().map(str::to_owned);
        let program = words
            .next()
            .ok_or_else(|| format!("{entry:?}: no program"))?;
        Ok((
            name.trim().to_owned(),
            Program {
                program,
                args: words.collect(),
            },
        ))
    }
}

/// What is kept on disk for each instance, to adopt it after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    instance_id: Uuid,
    tenant_id: Uuid,
    deployment_id: Uuid,
    generation: u64,
    version: String,
    port: u16,
    pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    start_ticks: u64,
    probe_path: String,
    probe_interval_ms: u32,
    probe_timeout_ms: u32,
    failure_threshold: u32,
}

struct Entry {
    record: Record,
    health: watch::Receiver<Health>,
    stopping: bool,
    adopted: bool,
    /// Ends the supervisor when the entry is forgotten.
    supervisor: tokio::task::JoinHandle<()>,
}

pub struct ProcessRuntime {
    catalog: HashMap<String, Program>,
    state_dir: PathBuf,
    instances: Arc<RwLock<HashMap<Uuid, Entry>>>,
    /// Bumped by the supervisors on every change of an instance's health.
    changes: Arc<watch::Sender<u64>>,
}

impl ProcessRuntime {
    /// A runtime keeping its records in `state_dir`; adopts the instances recorded there.
    pub fn open(
        catalog: HashMap<String, Program>,
        state_dir: impl Into<PathBuf>,
    ) -> Result<Self, RuntimeError> {
        let state_dir = state_dir.into();
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", state_dir.display())))?;
        let runtime = Self {
            catalog,
            state_dir,
            instances: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
        };
        runtime.adopt()?;
        Ok(runtime)
    }

    fn adopt(&self) -> Result<(), RuntimeError> {
        let entries = std::fs::read_dir(&self.state_dir)
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", self.state_dir.display())))?;
        let mut instances = self.instances.write().unwrap_or_else(|p| p.into_inner());
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let record: Record = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable instance record");
                    continue;
                }
            };
            let alive = alive(record.pid, record.start_ticks);
            let initial = if alive {
                Health::Starting
            } else {
                Health::Exited("gone while the orchestration service was away".into())
            };
            let (tx, rx) = watch::channel(initial);
            let supervisor = if alive {
                tracing::info!(instance = %record.instance_id, pid = record.pid, "adopted a running instance");
                tokio::spawn(supervise(record.clone(), None, tx, self.changes.clone()))
            } else {
                tokio::spawn(async {})
            };
            instances.insert(
                record.instance_id,
                Entry {
                    record,
                    health: rx,
                    stopping: false,
                    adopted: true,
                    supervisor,
                },
            );
        }
        Ok(())
    }

    fn record_path(&self, instance: Uuid) -> PathBuf {
        self.state_dir.join(format!("{instance}.json"))
    }

    /// The pid of an instance (tests kill it as a crash would).
    pub fn pid_of(&self, instance: Uuid) -> Option<u32> {
        self.read().get(&instance).map(|e| e.record.pid)
    }

    /// The pids recorded in `state_dir` whose process is still the one recorded: what a test
    /// kills when it ends, even by a panic, so no instance outlives it.
    pub fn recorded_pids(state_dir: &Path) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(state_dir) else {
            return vec![];
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Record>(&b).ok())
            .filter(|r| alive(r.pid, r.start_ticks))
            .map(|r| r.pid)
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Uuid, Entry>> {
        self.instances.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Uuid, Entry>> {
        self.instances.write().unwrap_or_else(|p| p.into_inner())
    }

    fn observed(entry: &Entry) -> Observed {
        let r = &entry.record;
        Observed {
            instance_id: r.instance_id,
            tenant_id: r.tenant_id,
            deployment_id: r.deployment_id,
            generation: r.generation,
            version: r.version.clone(),
            address: SocketAddr::from(([127, 0, 0, 1], r.port)).to_string(),
            health: entry.health.borrow().clone(),
            stopping: entry.stopping,
            adopted: entry.adopted,
        }
    }

    async fn start_instance(&self, target: &Target) -> Result<Observed, RuntimeError> {
        self.accepts(&target.spec)?;
        let program = self
            .catalog
            .get(&target.spec.image)
            .ok_or_else(|| RuntimeError::UnknownImage(target.spec.image.clone()))?;
        let instance_id = Uuid::now_v7();
        let port = free_port()?;
        let log = std::fs::File::create(self.state_dir.join(format!("{instance_id}.log")))
            .map_err(|e| RuntimeError::Io(format!("instance log: {e}")))?;
        let log_err = log
            .try_clone()
            .map_err(|e| RuntimeError::Io(format!("instance log: {e}")))?;
        let port_text = port.to_string();
        let mut command = tokio::process::Command::new(&program.program);
        command
            .args(program.args.iter().map(|a| a.replace("{port}", &port_text)))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&target.spec.env)
            .envs(&target.secrets)
            .env("PORT", &port_text)
            .env("TENANTRY_TENANT_ID", target.tenant_id.to_string())
            .env("TENANTRY_DEPLOYMENT_ID", target.deployment_id.to_string())
            .env("TENANTRY_INSTANCE_ID", instance_id.to_string())
            .env("TENANTRY_VERSION", &target.spec.version)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            // An instance outlives the service that started it (it is adopted at the next
            // start); tests kill what they started themselves.
            .kill_on_drop(false);
        let child = command
            .spawn()
            .map_err(|e| RuntimeError::Io(format!("start {}: {e}", program.program)))?;
        let pid = child
            .id()
            .ok_or_else(|| RuntimeError::Io("the instance exited at once".into()))?;
        let health = target.spec.health.clone().unwrap_or_default();
        let record = Record {
            instance_id,
            tenant_id: target.tenant_id,
            deployment_id: target.deployment_id,
            generation: target.generation,
            version: target.spec.version.clone(),
            port,
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            probe_path: health.path,
            probe_interval_ms: health.interval_ms.max(100),
            probe_timeout_ms: health.timeout_ms.max(50),
            failure_threshold: health.failure_threshold.max(1),
        };
        // Recorded before it is reported: whatever happens next, a restart finds it.
        let path = self.record_path(instance_id);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(&record).map_err(|e| RuntimeError::Io(e.to_string()))?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| RuntimeError::Io(format!("{}: {e}", path.display())))?;
        let (tx, rx) = watch::channel(Health::Starting);
        let supervisor = tokio::spawn(supervise(
            record.clone(),
            Some(child),
            tx,
            self.changes.clone(),
        ));
        let entry = Entry {
            record,
            health: rx,
            stopping: false,
            adopted: false,
            supervisor,
        };
        let observed = Self::observed(&entry);
        self.write().insert(instance_id, entry);
        tracing::info!(instance = %instance_id, pid, port, "started an instance");
        Ok(observed)
    }

    async fn stop_instance(&self, instance: Uuid, grace: Duration) -> Result<(), RuntimeError> {
        let (pid, ticks, mut health) = {
            let mut instances = self.write();
            let entry = instances
                .get_mut(&instance)
                .ok_or(RuntimeError::NoSuchInstance(instance))?;
            entry.stopping = true;
            (
                entry.record.pid,
                entry.record.start_ticks,
                entry.health.clone(),
            )
        };
        let exited = |h: &Health| matches!(h, Health::Exited(_));
        if exited(&health.borrow()) {
            return Ok(());
        }
        if alive(pid, ticks) {
            signal("TERM", pid).await;
        }
        let ended = tokio::time::timeout(grace, health.wait_for(exited))
            .await
            .is_ok();
        if !ended && alive(pid, ticks) {
            tracing::warn!(%instance, pid, "did not stop within its grace: killed");
            signal("KILL", pid).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), health.wait_for(exited)).await;
        }
        Ok(())
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn accepts(&self, spec: &pb::DeploymentSpec) -> Result<(), RuntimeError> {
        if self.catalog.contains_key(&spec.image) {
            Ok(())
        } else {
            Err(RuntimeError::UnknownImage(spec.image.clone()))
        }
    }

    fn instances(&self) -> Vec<Observed> {
        self.read().values().map(Self::observed).collect()
    }

    fn start<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Observed, RuntimeError>> {
        Box::pin(self.start_instance(target))
    }

    fn stop(&self, instance: Uuid, grace: Duration) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(self.stop_instance(instance, grace))
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.changes.subscribe())
    }

    fn cpu_time(&self, instance: Uuid) -> Option<Duration> {
        let (pid, ticks) = self
            .read()
            .get(&instance)
            .map(|e| (e.record.pid, e.record.start_ticks))?;
        let (state, started, cpu) = stat_cpu(pid)?;
        // Only while it is the process recorded (a reused pid is another program).
        (started == ticks && !matches!(state, 'Z' | 'X')).then_some(cpu)
    }

    fn forget(&self, instance: Uuid) {
        if let Some(entry) = self.write().remove(&instance) {
            entry.supervisor.abort();
            let _ = std::fs::remove_file(self.record_path(instance));
            let _ = std::fs::remove_file(self.state_dir.join(format!("{instance}.log")));
        }
    }
}

impl Drop for ProcessRuntime {
    fn drop(&mut self) {
        // The supervisors hold nothing the processes need: the instances run on, to be
        // adopted by the next runtime on the same state directory.
        for entry in self.write().values() {
            entry.supervisor.abort();
        }
    }
}

/// Watches one instance: its exit (at once for a child, at the next probe for an adopted
/// process) and its health.
async fn supervise(
    record: Record,
    mut child: Option<tokio::process::Child>,
    health: watch::Sender<Health>,
    changes: Arc<watch::Sender<u64>>,
) {
    let set = |to: Health| {
        health.send_replace(to);
        changes.send_modify(|n| *n = n.wrapping_add(1));
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], record.port));
    let interval = Duration::from_millis(u64::from(record.probe_interval_ms));
    let timeout = Duration::from_millis(u64::from(record.probe_timeout_ms));
    let started = tokio::time::Instant::now();
    let mut next = next_probe(false, Duration::ZERO, interval);
    let mut healthy_once = false;
    let mut failures = 0u32;
    loop {
        let exited = match child.as_mut() {
            Some(c) => tokio::select! {
                status = c.wait() => Some(match status {
                    Ok(s) => describe(s),
                    Err(e) => format!("wait: {e}"),
                }),
                () = tokio::time::sleep(next) => None,
            },
            None => {
                tokio::time::sleep(next).await;
                (!alive(record.pid, record.start_ticks)).then(|| "exited".to_owned())
            }
        };
        if let Some(how) = exited {
            set(Health::Exited(how));
            return;
        }
        let outcome = probe::http(addr, &record.probe_path, timeout).await;
        healthy_once |= outcome.is_ok();
        next = next_probe(healthy_once, started.elapsed(), interval);
        let current = health.borrow().clone();
        match outcome {
            Ok(()) => {
                failures = 0;
                if current != Health::Healthy {
                    set(Health::Healthy);
                }
            }
            Err(why) => {
                failures += 1;
                if current == Health::Healthy && failures >= record.failure_threshold {
                    set(Health::Unhealthy(why));
                }
            }
        }
    }
}

/// Probes of a starting instance: every 50 ms until it first answers, for at most this long.
const STARTUP_PROBE: Duration = Duration::from_millis(50);
const STARTUP_WINDOW: Duration = Duration::from_secs(10);

/// The wait before the next probe. A program is usually up within a few hundred
/// milliseconds of its start; probed only every `interval` (1 s by default), it would wait up
/// to that long after it could serve before it is healthy (and in the gateways' rotation).
/// So until its first success it is probed every 50 ms, like Kubernetes' startup probe; one
/// that never answers goes back to `interval` after 10 s, so it costs no more than that.
fn next_probe(healthy_once: bool, since_start: Duration, interval: Duration) -> Duration {
    if !healthy_once && since_start < STARTUP_WINDOW {
        STARTUP_PROBE.min(interval)
    } else {
        interval
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => "exited".into(),
    }
}

/// A free loopback port for an instance. Another program could take it between this check
/// and the instance's bind; the instance then fails its probe and exits, and is replaced.
fn free_port() -> Result<u16, RuntimeError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RuntimeError::Io(format!("allocate a port: {e}")))
}

/// `/proc/<pid>/stat`: its state letter and start time (fields 3 and 22), read after the
/// command name's closing parenthesis (a name may contain spaces and parentheses).
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ticks = fields.get(19)?.parse().ok()?;
    Some((state, ticks))
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times: the kernel reports them in
/// `USER_HZ`, which is 100 on every architecture we build for (reading `sysconf(_SC_CLK_TCK)`
/// would need `unsafe`).
const USER_HZ: u64 = 100;

/// `/proc/<pid>/stat`: state, start time and the CPU time used (user + system, fields 14 and
/// 15), read after the command name's closing parenthesis.
fn stat_cpu(pid: u32) -> Option<(char, u64, Duration)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let started = fields.get(19)?.parse().ok()?;
    let ticks = utime.saturating_add(stime);
    Some((
        state,
        started,
        Duration::from_millis(ticks.saturating_mul(1000) / USER_HZ),
    ))
}

fn start_ticks(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// The process `pid` runs, is the one recorded (same start time) and is not a zombie.
fn alive(pid: u32, ticks: u64) -> bool {
    matches!(stat(pid), Some((state, t)) if t == ticks && !matches!(state, 'Z' | 'X'))
}

async fn signal(name: &str, pid: u32) {
    let sent = tokio::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(e) = sent {
        tracing::warn!(pid, signal = name, error = %e, "could not signal an instance");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_entry_is_a_name_a_program_and_its_arguments() {
        let (name, program) =
            Program::parse_entry("web=python3 -m http.server {port} --bind 127.0.0.1").unwrap();
        assert_eq!(name, "web");
        assert_eq!(program.program, "python3");
        assert_eq!(
            program.args,
            ["-m", "http.server", "{port}", "--bind", "127.0.0.1"]
        );
        assert!(Program::parse_entry("no-equals").is_err());
        assert!(Program::parse_entry("web=").is_err());
    }

    #[test]
    fn cpu_time_grows_while_a_process_computes() {
        let me = std::process::id();
        let (_, _, before) = stat_cpu(me).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (_, started, after) = stat_cpu(me).unwrap();
        assert_eq!(started, start_ticks(me).unwrap());
        // Some of the 300 ms at least (the machine is shared), and at a 10 ms resolution.
        assert!(
            after >= before + Duration::from_millis(50),
            "{before:?} -> {after:?}"
        );
    }

    #[test]
    fn a_starting_instance_is_probed_every_50_ms_until_it_answers_or_10_s_pass() {
        let second = Duration::from_secs(1);
        assert_eq!(next_probe(false, Duration::ZERO, second), STARTUP_PROBE);
        assert_eq!(
            next_probe(false, Duration::from_millis(9_900), second),
            STARTUP_PROBE
        );
        // Healthy once: the spec's interval from then on, also while it fails its probes.
        assert_eq!(next_probe(true, Duration::from_millis(300), second), second);
        // Never answered: back to the interval after the startup window.
        assert_eq!(next_probe(false, STARTUP_WINDOW, second), second);
        // An interval shorter than the startup cadence is kept.
        let short = Duration::from_millis(20);
        assert_eq!(next_probe(false, Duration::ZERO, short), short);
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_another_process() {
        let me = std::process::id();
        let ticks = start_ticks(me).unwrap();
        assert!(alive(me, ticks));
        assert!(!alive(me, ticks + 1));
    }
}
