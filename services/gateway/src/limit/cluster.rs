//! The replicas' shared limits in Redis.
//!
//! Local-first: each gateway decides from its own limiters and, every `sync_interval`, sends
//! the admissions of its active limiters to Redis in one pipeline; the answer (how far ahead
//! the shared arrival time runs, counting every replica) pulls each local limiter up. Between
//! two syncs a replica cannot see the others' admissions, so the cluster may overshoot by at
//! most what the other replicas admit in one interval; in steady state it converges on the
//! limit. `strict` mode asks Redis on every request instead.
//!
//! A limiter that has not synced yet (the gateway just started, or the limiter was idle) asks
//! Redis for its first request, so a restarted gateway does not let a fresh burst through.
//! When Redis does not answer, every replica enforces `1 / replicas` of each limit (the number
//! of replicas last seen alive in Redis, or the configured one), and goes back to shared
//! limits at the first sync that succeeds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;

use super::gcra::{Decision, Gcra, Mode, Scope};

const SCRIPT: &str = include_str!("gcra.lua");
/// Run only when a request a limiter admitted in Redis is refused by a later one: plain EVAL.
const REFUND: &str = include_str!("refund.lua");
/// A limiter without admissions for this long leaves the sync set and asks Redis again.
const IDLE: Duration = Duration::from_secs(1);
/// Replicas announce themselves this often; one silent for three periods is gone.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Redis answering slowly (a timeout) counts as gone only after its calls have timed out for
/// this long with no answer between: a replica whose cores are saturated must not halve every
/// limit. (Measured from the first timeout, not from the last answer: an idle replica only
/// calls once a heartbeat, so its last answer is always about that old.)
const SLOW_NOT_GONE: Duration = Duration::from_secs(1);
/// `timing_out_since_ms` when the last call was answered.
const ANSWERING: u64 = u64::MAX;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Empty: no cluster, this gateway enforces every limit alone.
    pub redis_url: String,
    /// Ask Redis on every request.
    pub strict: bool,
    /// Replicas assumed while Redis has not said how many are alive.
    pub replicas: u32,
    pub sync_interval: Duration,
    /// Longest wait for Redis (connect or answer) before a replica falls back to its share.
    pub timeout: Duration,
    /// Prefix of every key, so several deployments (or test runs) can share one Redis.
    pub namespace: String,
}

/// Where [`Cluster::ask`] granted an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// In Redis, for every replica.
    Redis,
    /// By this replica alone (Redis did not answer), in this mode.
    Locally(Mode),
}

struct Link {
    connection: MultiplexedConnection,
    sha: String,
}

pub struct Cluster {
    config: ClusterConfig,
    client: Option<redis::Client>,
    link: ArcSwapOption<Link>,
    healthy: AtomicBool,
    /// Since when Redis's calls have been timing out, in milliseconds since `started`;
    /// [`ANSWERING`] once one is answered.
    timing_out_since_ms: std::sync::atomic::AtomicU64,
    started: Instant,
    replicas: AtomicU32,
    /// Limiters that admitted since the last sync; taken by [`Cluster::run`].
    activity: tokio::sync::Mutex<Option<mpsc::Receiver<Arc<Gcra>>>>,
    sender: mpsc::Sender<Arc<Gcra>>,
    instance: String,
}

impl Cluster {
    /// A cluster member; the URL is checked now, the connection made by [`Cluster::connect`].
    pub fn new(config: ClusterConfig, instance: String) -> Result<Arc<Self>, String> {
        let client = if config.redis_url.is_empty() {
            None
        } else {
            Some(
                redis::Client::open(config.redis_url.as_str())
                    .map_err(|e| format!("redis url {:?}: {e}", config.redis_url))?,
            )
        };
        let (sender, receiver) = mpsc::channel();
        Ok(Arc::new(Self {
            replicas: AtomicU32::new(config.replicas.max(1)),
            config,
            client,
            link: ArcSwapOption::empty(),
            healthy: AtomicBool::new(false),
            timing_out_since_ms: std::sync::atomic::AtomicU64::new(ANSWERING),
            started: Instant::now(),
            activity: tokio::sync::Mutex::new(Some(receiver)),
            sender,
            instance,
        }))
    }

    /// A gateway alone: every limit is enforced locally.
    pub fn standalone() -> Arc<Self> {
        Self::new(
            ClusterConfig {
                redis_url: String::new(),
                strict: false,
                replicas: 1,
                sync_interval: Duration::from_millis(50),
                timeout: Duration::from_millis(100),
                namespace: String::new(),
            },
            String::new(),
        )
        .unwrap_or_else(|_| unreachable!("no url to parse"))
    }

    /// How requests are decided right now.
    pub fn mode(&self) -> Mode {
        if self.client.is_none() {
            Mode::Standalone
        } else if self.healthy.load(Ordering::Relaxed) {
            Mode::Cluster {
                strict: self.config.strict,
            }
        } else {
            Mode::Partitioned {
                replicas: self.replicas.load(Ordering::Relaxed),
            }
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Replicas sharing each limit (last seen alive in Redis, or as configured).
    pub fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::Relaxed)
    }

    /// A limiter of `kind` named `id` (unique within the gateway's namespace).
    pub fn limiter(&self, kind: &'static str, id: &str, rps: u32, burst: u32) -> Gcra {
        let scope = Scope {
            kind,
            key: format!("{}rl:{id}", self.config.namespace).into(),
        };
        let activity = self.client.as_ref().map(|_| self.sender.clone());
        Gcra::new(rps, burst, scope, activity)
    }

    /// Connects (or reconnects) and announces this replica; false when Redis does not answer.
    pub async fn connect(&self) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout));
        let linked = async {
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(SCRIPT)
                .query_async(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(Link { connection, sha })
        }
        .await;
        match linked {
            Ok(link) => {
                self.answered();
                self.link.store(Some(Arc::new(link)));
                if self.heartbeat().await {
                    if !self.healthy.swap(true, Ordering::Relaxed) {
                        tracing::info!(
                            replicas = self.replicas(),
                            "rate limits shared through redis"
                        );
                    }
                    return true;
                }
                false
            }
            Err(e) => {
                self.down(&e);
                false
            }
        }
    }

    fn answered(&self) {
        self.timing_out_since_ms.store(ANSWERING, Ordering::Relaxed);
    }

    /// A call failed: Redis is gone if it refused or dropped the connection, or if its calls
    /// have timed out for a while.
    fn failed(&self, error: &redis::RedisError) {
        if error.is_timeout() {
            let now = self.started.elapsed().as_millis() as u64;
            let since = match self.timing_out_since_ms.compare_exchange(
                ANSWERING,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => now,
                Err(since) => since,
            };
            if Duration::from_millis(now.saturating_sub(since)) < SLOW_NOT_GONE {
                return;
            }
        }
        self.down(error);
    }

    fn down(&self, error: &redis::RedisError) {
        self.link.store(None);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %error, replicas = self.replicas(), "redis unreachable: each replica enforces its share of every limit");
        }
    }

    /// Announces this replica and reads how many are alive.
    async fn heartbeat(&self) -> bool {
        let Some(link) = self.link.load_full() else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let key = format!("{}gateways", self.config.namespace);
        let mut connection = link.connection.clone();
        let answer: Result<(i64, i64, u32), _> = redis::pipe()
            .cmd("ZADD")
            .arg(&key)
            .arg(now)
            .arg(&self.instance)
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now.saturating_sub(3 * HEARTBEAT.as_millis() as u64))
            .cmd("ZCARD")
            .arg(&key)
            .query_async(&mut connection)
            .await;
        match answer {
            Ok((_, _, alive)) => {
                self.answered();
                self.replicas.store(alive.max(1), Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// Leaves the replica set, so the others' shares grow at once.
    pub async fn leave(&self) {
        if let Some(link) = self.link.load_full() {
            let mut connection = link.connection.clone();
            let _: Result<i64, _> = redis::cmd("ZREM")
                .arg(format!("{}gateways", self.config.namespace))
                .arg(&self.instance)
                .query_async(&mut connection)
                .await;
        }
    }

    /// Decides one request: locally, or in Redis when only the cluster can.
    pub async fn check(&self, limiter: &Arc<Gcra>) -> Decision {
        match Gcra::check(limiter, self.mode()) {
            Decision::AskCluster => self.ask(limiter).await.0,
            decided => decided,
        }
    }

    /// Decides one request in Redis (strict mode, or the limiter's first). When Redis does
    /// not answer, the replica's share decides. Also says where, for [`Cluster::give_back`].
    pub async fn ask(&self, limiter: &Arc<Gcra>) -> (Decision, Granted) {
        if let Some(link) = self.link.load_full() {
            let mut connection = link.connection.clone();
            let answer: Result<(u8, u64), _> = script_call(
                &link.sha,
                limiter,
                1,
                Duration::ZERO,
                true,
                self.config.sync_interval,
            )
            .query_async(&mut connection)
            .await;
            match answer {
                Ok((admitted, lead_us)) => {
                    self.answered();
                    let lead = Duration::from_micros(lead_us);
                    limiter.pull_up(lead);
                    return (limiter.decision_from(admitted == 1, lead), Granted::Redis);
                }
                Err(e) => self.failed(&e),
            }
        }
        let mode = Mode::Partitioned {
            replicas: self.replicas(),
        };
        (Gcra::check(limiter, mode), Granted::Locally(mode))
    }

    /// Gives back an admission [`Cluster::ask`] granted, where it was granted: a later limiter
    /// refused the request, which must not use up this one's limit.
    pub async fn give_back(&self, limiter: &Gcra, granted: Granted) {
        match granted {
            Granted::Locally(mode) => limiter.refund(mode),
            Granted::Redis => {
                // The local arrival time was pulled up with Redis's; it steps back with it
                // (as a standalone refund: a cell Redis granted was never pending a sync).
                limiter.refund(Mode::Standalone);
                let Some(link) = self.link.load_full() else {
                    return;
                };
                let mut connection = link.connection.clone();
                let answer: Result<u8, _> = redis::cmd("EVAL")
                    .arg(REFUND)
                    .arg(1)
                    .arg(&*limiter.scope.key)
                    .arg(limiter.interval_us())
                    .query_async(&mut connection)
                    .await;
                match answer {
                    Ok(_) => self.answered(),
                    Err(e) => self.failed(&e),
                }
            }
        }
    }

    /// Syncs active limiters every `sync_interval` and announces the replica every second,
    /// reconnecting as needed, until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        if self.client.is_none() {
            shutdown.await;
            return;
        }
        let Some(activity) = self.activity.lock().await.take() else {
            return;
        };
        let mut shutdown = std::pin::pin!(shutdown);
        let mut active: HashMap<usize, (Arc<Gcra>, Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(self.config.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heartbeat = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut shutdown => break,
            }
            let now = Instant::now();
            while let Ok(limiter) = activity.try_recv() {
                active.insert(Arc::as_ptr(&limiter) as usize, (limiter, now));
            }
            if self.link.load().is_none() && !self.connect().await {
                // Cut off: what was admitted meanwhile stays local (each replica paid its share).
                for (limiter, _) in active.values() {
                    let _ = limiter.take_pending();
                }
                continue;
            }
            self.sync(&mut active, now).await;
            if now.duration_since(last_heartbeat) >= HEARTBEAT {
                last_heartbeat = now;
                self.heartbeat().await;
            }
        }
        self.leave().await;
    }

    /// One pipeline with every active limiter's admissions since the last sync.
    async fn sync(&self, active: &mut HashMap<usize, (Arc<Gcra>, Instant)>, now: Instant) {
        let Some(link) = self.link.load_full() else {
            return;
        };
        let mut pipe = redis::pipe();
        let mut sent = Vec::with_capacity(active.len());
        active.retain(|_, (limiter, last)| {
            let (count, age) = limiter.take_pending();
            if count > 0 {
                *last = now;
            } else if now.duration_since(*last) > IDLE {
                limiter.unsync();
                return false;
            }
            pipe.add_command(script_call(
                &link.sha,
                limiter,
                count,
                age,
                false,
                self.config.sync_interval,
            ));
            sent.push(limiter.clone());
            true
        });
        if sent.is_empty() {
            return;
        }
        let mut connection = link.connection.clone();
        match pipe.query_async::<Vec<(u8, u64)>>(&mut connection).await {
            Ok(answers) => {
                self.answered();
                for (limiter, (_, lead_us)) in sent.iter().zip(answers) {
                    limiter.pull_up(Duration::from_micros(lead_us));
                }
            }
            Err(e) => self.failed(&e),
        }
    }
}

/// One call of the script: a sync of `count` admissions that began `age` ago, or a strict
/// check of one request.
///
/// Each call also carries a floor, the replica's own view of how far ahead the TAT runs (its
/// unsent admissions aside): a Redis that restarted empty learns it back instead of granting a
/// fresh burst. Less one sync interval, so the time a report travels never ratchets the shared
/// TAT up.
fn script_call(
    sha: &str,
    limiter: &Gcra,
    count: u32,
    age: Duration,
    strict: bool,
    sync_interval: Duration,
) -> redis::Cmd {
    let unsent = if strict { 0 } else { count };
    let unsent = Duration::from_secs_f64(limiter.interval_us() * f64::from(unsent) / 1e6);
    let floor = limiter.lead().saturating_sub(unsent + sync_interval);
    let mut call = redis::cmd("EVALSHA");
    call.arg(sha)
        .arg(1)
        .arg(&*limiter.scope.key)
        .arg(limiter.interval_us())
        .arg(limiter.tolerance_us())
        .arg(count)
        .arg(age.as_micros() as u64)
        .arg(u8::from(strict))
        .arg(floor.as_micros() as u64);
    call
}
