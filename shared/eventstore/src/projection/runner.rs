//! The loop that feeds a projection from its durable consumer.
//!
//! One runner per projection is active at a time across all replicas of a service: it holds a
//! Postgres advisory lock on a dedicated connection and runs every apply transaction on that
//! same connection, so a runner that loses its session cannot commit anything. Other replicas
//! follow the checkpoint (for `wait_for`) and take over when the lock frees.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, pull};
use futures::{FutureExt, Stream, StreamExt};
use sqlx::{Acquire, Executor, PgConnection, PgPool};
use tracing::{Instrument, debug, info_span, warn};

use super::checkpoint::{lock_checkpoint, quarantine, read_checkpoint, write_checkpoint};
use super::{Positions, Projection, ProjectionError};
use crate::event::StreamMessage;
use crate::streams::EventStore;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Most messages applied in one transaction.
    pub batch_size: usize,
    /// Messages asked of the server at a time (a batch may take several requests). The NATS
    /// client buffers up to 65,536 messages a subscription and drops past that, and a pull
    /// keeps up to one and a half requests on their way: keep it well below.
    pub fetch_size: usize,
    /// Durable consumer name; defaults to the projection's name. A rebuild uses another.
    pub consumer_name: Option<String>,
    /// Upper bound of the retry backoff after a failed batch.
    pub max_backoff: Duration,
    /// How often a replica that is not running the projection reads its checkpoint.
    pub follower_poll: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 4000,
            fetch_size: 4000,
            consumer_name: None,
            max_backoff: Duration::from_secs(30),
            follower_poll: Duration::from_millis(20),
        }
    }
}

pub struct ProjectionRunner<P> {
    store: EventStore,
    pool: PgPool,
    projection: Arc<P>,
    config: RunnerConfig,
    positions: Positions,
}

impl<P: Projection> ProjectionRunner<P> {
    /// `pool` must have the projection's schema as its search_path.
    pub fn new(store: EventStore, pool: PgPool, projection: P, config: RunnerConfig) -> Self {
        Self {
            store,
            pool,
            projection: Arc::new(projection),
            config,
            positions: Positions::default(),
        }
    }

    /// Applies up to `n` messages in one transaction (default 4,000). A projection that
    /// aggregates (adds up many messages into few rows) writes fewer rows per message the
    /// more one transaction takes while it catches up; live, batches stay as small as what
    /// has arrived.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.config.batch_size = n.max(1);
        self
    }

    /// The handle queries use to wait for this projection.
    pub fn positions(&self) -> Positions {
        self.positions.clone()
    }

    fn consumer_name(&self) -> String {
        self.config
            .consumer_name
            .clone()
            .unwrap_or_else(|| self.projection.name().to_owned())
    }

    /// Runs until `shutdown` resolves. Failures (NATS or Postgres down, a handler error) are
    /// retried with backoff; they never end the loop.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let span = info_span!("projection", name = %self.projection.name());
        self.run_inner(shutdown).instrument(span).await;
    }

    async fn run_inner(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            let term = async {
                let mut conn = self.pool.acquire().await?.detach();
                if try_lead(&mut conn, self.projection.name()).await? {
                    debug!("leading projection");
                    Ok::<_, ProjectionError>(Some(self.lead(&mut conn, &mut backoff).await))
                } else {
                    drop(conn);
                    self.follow(Duration::from_secs(1)).await?;
                    Ok(None)
                }
            };
            let outcome = tokio::select! {
                _ = &mut shutdown => return,
                outcome = term => outcome,
            };
            match outcome {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    metrics::counter!("tenantry_projection_errors_total", "projection" => self.projection.name().to_owned()).increment(1);
                    warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "projection failed, retrying");
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Applies batches until something fails; the caller backs off and starts a new term
    /// (re-reading the checkpoint). Shutdown drops this future.
    async fn lead(&self, conn: &mut PgConnection, backoff: &mut Duration) -> ProjectionError {
        self.projection.reset().await;
        let checkpoint = match read_checkpoint(conn, self.projection.name()).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        self.positions.advance(checkpoint);
        let messages = match self.subscribe(checkpoint).await {
            Ok(m) => m,
            Err(e) => return e,
        };
        // The next batch is fetched and decoded on a task of its own while this one is
        // applied: the two overlap (NATS and that task on one side, this task and Postgres on
        // the other).
        let (ready, mut batches) = tokio::sync::mpsc::channel(1);
        let batch_size = self.config.batch_size;
        let fetch = tokio::spawn(async move {
            let mut messages = pin!(messages);
            loop {
                let next = fetch_batch::<P::Message, _>(&mut messages, batch_size)
                    .await
                    .unwrap_or_else(|| Err(ProjectionError::Other("consumer stream ended".into())));
                let failed = next.is_err();
                if ready.send(next).await.is_err() || failed {
                    break;
                }
            }
        });
        // Ends with this term, however it ends (shutdown drops this future).
        let _fetch = AbortOnDrop(fetch);
        let apply = async {
            while let Some(batch) = batches.recv().await {
                let Batch { entries, last } = match batch {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                // On a failure the batch is neither acknowledged nor nak'ed: the next term
                // recreates the consumer at the checkpoint.
                let position = match self.apply_chunk(conn, entries).await {
                    Ok(position) => position,
                    Err(e) => return e,
                };
                *backoff = Duration::from_millis(100);
                // AckPolicy::All: acknowledging the last message acknowledges the batch.
                if let Err(e) = last.ack().await {
                    return ProjectionError::Other(format!("ack: {e}"));
                }
                if let Ok(info) = last.info() {
                    metrics::gauge!("tenantry_projection_lag", "projection" => self.projection.name().to_owned()).set(info.pending as f64);
                }
                self.positions.advance(position);
            }
            ProjectionError::Other("consumer stream ended".into())
        };
        apply.await
    }

    /// Applies one batch and its checkpoint in one transaction; returns the new checkpoint.
    async fn apply_chunk(
        &self,
        conn: &mut PgConnection,
        entries: Vec<Entry<P::Message>>,
    ) -> Result<u64, ProjectionError> {
        let name = self.projection.name();
        let started = std::time::Instant::now();
        let mut tx = conn.begin().await?;
        let checkpoint = lock_checkpoint(&mut tx, name).await?;
        let mut messages = Vec::with_capacity(entries.len());
        // The subject of each decoded message, for a quarantine record.
        let mut subjects = Vec::with_capacity(entries.len());
        let mut undecodable = Vec::new();
        let mut last = checkpoint;
        for entry in entries {
            // At or below the checkpoint: already applied (a redelivery).
            if entry.position <= checkpoint {
                continue;
            }
            last = last.max(entry.position);
            match entry.decoded {
                Ok(m) => {
                    messages.push(m);
                    subjects.push(entry.subject);
                }
                Err(e) => undecodable.push((entry.position, entry.subject, e)),
            }
        }
        if last == checkpoint {
            return Ok(checkpoint);
        }
        let mut clean = undecodable.is_empty();
        match self.projection.apply(&mut tx, &messages).await {
            Ok(()) => {}
            Err(e) if e.is_undecodable() => {
                // One of the messages will never apply: find it by applying them one at a
                // time (each behind a savepoint), from a fresh transaction and a projection
                // without in-memory state. Only this rare path pays for the savepoints.
                drop(tx);
                clean = false;
                self.projection.reset().await;
                tx = conn.begin().await?;
                lock_checkpoint(&mut tx, name).await?;
                for (message, subject) in messages.iter().zip(&subjects) {
                    tx.execute("SAVEPOINT one_message").await?;
                    match self
                        .projection
                        .apply(&mut tx, std::slice::from_ref(message))
                        .await
                    {
                        Ok(()) => {
                            tx.execute("RELEASE SAVEPOINT one_message").await?;
                        }
                        Err(e) if e.is_undecodable() => {
                            tx.execute("ROLLBACK TO SAVEPOINT one_message").await?;
                            self.projection.reset().await;
                            undecodable.push((message.position(), subject.clone(), e.to_string()));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        }
        for (position, subject, error) in &undecodable {
            quarantine(&mut tx, name, *position, subject, error).await?;
            metrics::counter!("tenantry_projection_quarantined_total", "projection" => name.to_owned())
                .increment(1);
            tracing::error!(projection = %name, position, %subject, %error, "projection quarantined a message it cannot decode");
        }
        write_checkpoint(&mut tx, name, last).await?;
        tx.commit().await?;
        if clean {
            self.projection.committed().await;
        } else {
            // The one-at-a-time path left partial in-memory state: start over from Postgres.
            self.projection.reset().await;
        }
        metrics::counter!("tenantry_projection_applied_total", "projection" => name.to_owned())
            .increment(messages.len() as u64);
        debug!(
            messages = messages.len(),
            ms = started.elapsed().as_millis() as u64,
            "applied a batch"
        );
        Ok(last)
    }

    /// (Re)creates the durable consumer at `checkpoint + 1` and returns its message stream.
    ///
    /// The checkpoint in Postgres is the truth; the consumer is only a cursor, so it is
    /// recreated at the start of every term rather than trusted.
    async fn subscribe(
        &self,
        checkpoint: u64,
    ) -> Result<
        impl Stream<Item = Result<async_nats::jetstream::Message, consumer::pull::MessagesError>>
        + use<P>,
        ProjectionError,
    > {
        let consumer = self.create_consumer(checkpoint).await?;
        consumer
            .stream()
            .max_messages_per_batch(self.config.fetch_size.min(self.config.batch_size))
            .messages()
            .await
            .map_err(|e| ProjectionError::Other(format!("consume: {e}")))
    }

    async fn create_consumer(
        &self,
        checkpoint: u64,
    ) -> Result<consumer::Consumer<pull::Config>, ProjectionError> {
        let name = self.consumer_name();
        let stream = self.store.stream_of(P::STREAM);
        // Not found is fine: first run.
        let _ = stream.delete_consumer(&name).await;
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name),
                filter_subject: self.projection.filter(self.store.root_of(P::STREAM)),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: checkpoint + 1,
                },
                ack_policy: AckPolicy::All,
                ack_wait: Duration::from_secs(60),
                // Unacknowledged at once: the batch being applied, the one waiting for it,
                // the one being fetched, and the requests on their way. With less the
                // server would hold back a batch until the one before it is acknowledged.
                max_ack_pending: i64::try_from(
                    3 * self.config.batch_size + 2 * self.config.fetch_size,
                )
                .unwrap_or(i64::MAX)
                .max(20_000),
                ..Default::default()
            })
            .await
            .map_err(|e| ProjectionError::Other(format!("create consumer: {e}")))
    }

    /// Mirrors the checkpoint of the replica that runs the projection, for `wait_for`.
    async fn follow(&self, period: Duration) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + period;
        while tokio::time::Instant::now() < deadline {
            let mut conn = self.pool.acquire().await?;
            self.positions
                .advance(read_checkpoint(&mut conn, self.projection.name()).await?);
            drop(conn);
            tokio::time::sleep(self.config.follower_poll).await;
        }
        Ok(())
    }

    /// Applies everything the log holds now and returns the final checkpoint: used to rebuild
    /// a projection into fresh tables (give it a pool on a fresh schema and its own
    /// `consumer_name`).
    pub async fn catch_up(self) -> Result<u64, ProjectionError> {
        let mut conn = self.pool.acquire().await?.detach();
        self.projection.reset().await;
        let checkpoint = read_checkpoint(&mut conn, self.projection.name()).await?;
        let mut consumer = self.create_consumer(checkpoint).await?;
        let pending = consumer
            .info()
            .await
            .map_err(|e| ProjectionError::Other(format!("consumer info: {e}")))?
            .num_pending;
        if pending == 0 {
            return Ok(checkpoint);
        }
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.config.fetch_size.min(self.config.batch_size))
            .messages()
            .await
            .map_err(|e| ProjectionError::Other(format!("consume: {e}")))?;
        let mut messages = pin!(messages);
        let mut position = checkpoint;
        while let Some(batch) =
            fetch_batch::<P::Message, _>(&mut messages, self.config.batch_size).await
        {
            let Batch { entries, last } = batch?;
            position = self.apply_chunk(&mut conn, entries).await?;
            let _ = last.ack().await;
            let pending = last.info().map(|i| i.pending).unwrap_or(1);
            if pending == 0 {
                break;
            }
        }
        let _ = self
            .store
            .stream_of(P::STREAM)
            .delete_consumer(&self.consumer_name())
            .await;
        Ok(position)
    }
}

/// How long a batch waits for its next message while the server reports more pending: a
/// pause in delivery (both cores busy applying the batch before) does not end it short.
const PENDING_WAIT: Duration = Duration::from_secs(1);

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A message as fetched: where it is, its subject, and its decoded form or why it has none.
struct Entry<M> {
    position: u64,
    /// Shares the received message's buffer: kept for a quarantine record only.
    subject: async_nats::Subject,
    decoded: Result<M, String>,
}

/// A batch of decoded messages, and the last one as received: acknowledging it acknowledges
/// them all (AckPolicy::All).
struct Batch<M> {
    entries: Vec<Entry<M>>,
    last: async_nats::jetstream::Message,
}

/// The next batch: whatever is ready, and — while the server reports more messages pending
/// for the consumer — up to `max`. Live, a batch is applied as soon as it arrives (low
/// read-your-writes latency); catching up, batches fill (high throughput). Each message is
/// decoded as it arrives and only the last is kept as received (to acknowledge the batch).
async fn fetch_batch<M: StreamMessage, S>(
    messages: &mut S,
    max: usize,
) -> Option<Result<Batch<M>, ProjectionError>>
where
    S: Stream<Item = Result<async_nats::jetstream::Message, consumer::pull::MessagesError>> + Unpin,
{
    let failed =
        |e: consumer::pull::MessagesError| ProjectionError::Other(format!("consumer: {e}"));
    let mut last = match messages.next().await? {
        Ok(m) => m,
        Err(e) => return Some(Err(failed(e))),
    };
    let mut entries = Vec::new();
    let mut more = match decode_into(&last, &mut entries) {
        Ok(pending) => pending > 0,
        Err(e) => return Some(Err(e)),
    };
    while entries.len() < max {
        let next = if more {
            tokio::time::timeout(PENDING_WAIT, messages.next())
                .await
                .ok()
                .flatten()
        } else {
            messages.next().now_or_never().flatten()
        };
        match next {
            Some(Ok(m)) => {
                more = match decode_into(&m, &mut entries) {
                    Ok(pending) => pending > 0,
                    Err(e) => return Some(Err(e)),
                };
                last = m;
            }
            Some(Err(e)) => return Some(Err(failed(e))),
            None => break,
        }
    }
    Some(Ok(Batch { entries, last }))
}

/// Decodes `msg` onto `entries`; returns how many messages the server said were pending
/// after it.
fn decode_into<M: StreamMessage>(
    msg: &async_nats::jetstream::Message,
    entries: &mut Vec<Entry<M>>,
) -> Result<u64, ProjectionError> {
    let info = msg
        .info()
        .map_err(|e| ProjectionError::Other(format!("message info: {e}")))?;
    let traceparent = msg
        .headers
        .as_ref()
        .and_then(|h| h.get("traceparent"))
        .map(|v| v.to_string());
    entries.push(Entry {
        position: info.stream_sequence,
        subject: msg.subject.clone(),
        decoded: M::decode(
            info.stream_sequence,
            msg.subject.as_str(),
            &msg.payload,
            traceparent,
        )
        .map_err(|e| e.to_string()),
    });
    Ok(info.pending)
}

/// Takes the projection's advisory lock on this session if it is free.
async fn try_lead(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let (locked,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_lock(hashtext(current_schema() || '/' || $1))")
            .bind(name)
            .fetch_one(conn)
            .await?;
    Ok(locked)
}
