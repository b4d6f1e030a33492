//! Aggregates and the command loop.
//!
//! An aggregate is pure: `decide(&state, &command)` returns the events a command produces (or
//! a domain error) and `evolve` folds an event into the state. The [`Repository`] does the I/O:
//! it finds the state (recent aggregates are cached with their last sequence, so the happy path
//! is one round trip to NATS: the append), appends with that sequence as the expectation, and
//! on a conflict reads the events it missed and decides again, a bounded number of times.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tenantry_proto::events::v1::{Envelope, EventBatch};
use thiserror::Error;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::append::AppendRequest;
use crate::error::StoreError;
use crate::event::{EventMeta, EventPayload, StoredMessage, meta_of};
use crate::streams::EventStore;
use crate::subject::AggregateAddress;
use crate::time;

/// A consistency boundary: its events are decided from its own state only.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    type Command: Send + Sync;
    /// The events' contract, which also names the aggregate type in subjects.
    type Event: EventPayload;
    /// The aggregate type token in subjects, e.g. `tenant`: its events' contract's.
    const TYPE: &'static str = <Self::Event as EventPayload>::AGGREGATE_TYPE;
    type Error: Send;

    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
    fn evolve(&mut self, event: &Self::Event, meta: &EventMeta);
}

/// Who and what caused a command; stamped on every event it produces.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    /// Idempotency key: becomes `Nats-Msg-Id` and each event's `causation_id`.
    pub command_id: String,
    pub actor: String,
    pub correlation_id: String,
    pub occurred_at: DateTime<Utc>,
    pub traceparent: Option<String>,
    /// A digest of the request, when the client chose the command id (an idempotency key):
    /// a later request with the same id and another fingerprint is a different request
    /// reusing the key, and is refused rather than silently answered with the first one's
    /// outcome.
    pub fingerprint: Option<String>,
}

/// The result of a command that was accepted.
#[derive(Debug, Clone)]
pub struct Executed<A> {
    /// Stream position of the command's effect (for `min_position` on later reads).
    pub position: u64,
    /// The aggregate after the command.
    pub state: A,
    /// The command id had already been applied; nothing new was written.
    pub duplicate: bool,
}

#[derive(Debug, Error)]
pub enum ExecuteError<E> {
    /// The aggregate refused the command.
    #[error("command rejected")]
    Rejected(E),
    /// Other writers kept winning the race; the caller may retry (`ABORTED`).
    #[error("concurrent modification of {0}")]
    Contended(String),
    /// The command id (the client's idempotency key) was used for a different request.
    #[error("the command id was already used for a different request")]
    IdReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times a command is decided again after losing a race before giving up.
const MAX_ATTEMPTS: usize = 8;

#[derive(Clone)]
struct Cached<A> {
    state: A,
    version: u64,
}

/// Loads aggregates of one type and runs commands against them.
#[derive(Clone)]
pub struct Repository<A: Aggregate> {
    store: EventStore,
    cache: Arc<Mutex<HashMap<AggregateAddress, Cached<A>>>>,
    capacity: usize,
}

impl<A: Aggregate> Repository<A> {
    pub fn new(store: EventStore, capacity: usize) -> Self {
        Self {
            store,
            cache: Arc::default(),
            capacity,
        }
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The address of this type's aggregate `id` in `tenant` (the tenant token of
    /// platform-level aggregates is [`crate::PLATFORM_TENANT`]).
    pub fn address(
        &self,
        tenant: impl Into<String>,
        id: impl Into<String>,
    ) -> Result<AggregateAddress, crate::InvalidToken> {
        AggregateAddress::of::<A>(tenant, id)
    }

    /// The aggregate's state and its version (the stream sequence of its last message; 0 when
    /// it does not exist), from the cache or the log.
    pub async fn load(&self, address: &AggregateAddress) -> Result<(A, u64), StoreError> {
        let cached = self.cache.lock().await.get(address).cloned();
        let (state, version) = match cached {
            Some(c) => (c.state, c.version),
            None => (A::default(), 0),
        };
        self.catch_up(address, state, version).await
    }

    /// Folds the messages after `version` into `state`.
    async fn catch_up(
        &self,
        address: &AggregateAddress,
        mut state: A,
        mut version: u64,
    ) -> Result<(A, u64), StoreError> {
        for message in self.store.read_aggregate(address, version).await? {
            fold(&mut state, &message)?;
            version = message.position;
        }
        self.remember(address, &state, version).await;
        Ok((state, version))
    }

    async fn remember(&self, address: &AggregateAddress, state: &A, version: u64) {
        let mut cache = self.cache.lock().await;
        // A crude bound: the cache is an optimisation, a miss only costs a read.
        if cache.len() >= self.capacity && !cache.contains_key(address) {
            cache.clear();
        }
        cache.insert(
            address.clone(),
            Cached {
                state: state.clone(),
                version,
            },
        );
    }

    async fn forget(&self, address: &AggregateAddress) {
        self.cache.lock().await.remove(address);
    }

    /// Decides `command` against the current state and appends the outcome.
    ///
    /// A command that produces no events succeeds without writing (its position is the
    /// aggregate's version).
    pub async fn execute(
        &self,
        address: &AggregateAddress,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        self.run(address, command, meta, false).await
    }

    /// Like [`Repository::execute`], for an aggregate the caller expects not to exist yet (a
    /// fresh id, a name being claimed): on a cache miss it decides against the empty state
    /// and appends with expected sequence 0 without reading first, saving a round trip. If the
    /// aggregate does exist, that append is refused and the command is decided again against
    /// the real state, as after any lost race; a retry of the same command is still
    /// deduplicated by its message id.
    pub async fn execute_new(
        &self,
        address: &AggregateAddress,
        command: &A::Command,
        meta: &CommandMeta,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        self.run(address, command, meta, true).await
    }

    async fn run(
        &self,
        address: &AggregateAddress,
        command: &A::Command,
        meta: &CommandMeta,
        assume_new: bool,
    ) -> Result<Executed<A>, ExecuteError<A::Error>> {
        let cached = self.cache.lock().await.get(address).cloned();
        // A cached state may be behind the log: another repository (a replica, a job, a
        // projection acting on events) may have appended since. An append against it is
        // refused and decided again; a refusal or a no-op is not, so it is checked first.
        let mut maybe_stale = cached.is_some();
        let (mut state, mut version) = match cached {
            Some(c) => (c.state, c.version),
            None if assume_new => (A::default(), 0),
            None => self.catch_up(address, A::default(), 0).await?,
        };
        for _ in 0..MAX_ATTEMPTS {
            let decided = state.decide(command);
            if maybe_stale && decided.as_ref().map_or(true, Vec::is_empty) {
                maybe_stale = false;
                let before = version;
                (state, version) = self.catch_up(address, state, version).await?;
                if version != before {
                    continue;
                }
            }
            let events = decided.map_err(ExecuteError::Rejected)?;
            if events.is_empty() {
                return Ok(Executed {
                    position: version,
                    state,
                    duplicate: false,
                });
            }
            let batch = batch_of(address, &events, meta);
            let metas: Vec<EventMeta> = batch.events.iter().map(|e| meta_of(e, 0)).collect();
            let request = AppendRequest {
                address: address.clone(),
                expected: Some(version),
                message_id: meta.command_id.clone(),
                batch,
                traceparent: meta.traceparent.clone(),
                fingerprint: meta.fingerprint.clone(),
            };
            match self.store.append(request).await {
                Ok(outcome) if outcome.duplicate => {
                    // An earlier request with this id was written. If it was another request
                    // (a reused idempotency key), say so; if it was this one (a retry), report
                    // the state the log actually holds rather than our re-decision.
                    if let Some(ours) = &meta.fingerprint
                        && self.store.fingerprint_at(outcome.position).await?.as_ref() != Some(ours)
                    {
                        return Err(ExecuteError::IdReused);
                    }
                    self.forget(address).await;
                    let (state, _) = self.catch_up(address, A::default(), 0).await?;
                    return Ok(Executed {
                        position: outcome.position,
                        state,
                        duplicate: true,
                    });
                }
                Ok(outcome) => {
                    for (event, mut event_meta) in events.iter().zip(metas) {
                        event_meta.position = outcome.position;
                        state.evolve(event, &event_meta);
                    }
                    self.remember(address, &state, outcome.position).await;
                    return Ok(Executed {
                        position: outcome.position,
                        state,
                        duplicate: false,
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    (state, version) = self.catch_up(address, state, version).await?;
                }
                Err(e) => {
                    self.forget(address).await;
                    return Err(e.into());
                }
            }
        }
        self.forget(address).await;
        Err(ExecuteError::Contended(address.subject(self.store.root())))
    }
}

/// Applies every event of a stored message to `state`.
pub fn fold<A: Aggregate>(state: &mut A, message: &StoredMessage) -> Result<(), StoreError> {
    let events = message
        .events::<A::Event>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    for stored in &events {
        state.evolve(&stored.event, &stored.meta);
    }
    Ok(())
}

/// Wraps a command's events in envelopes.
pub fn batch_of<E: EventPayload>(
    address: &AggregateAddress,
    events: &[E],
    meta: &CommandMeta,
) -> EventBatch {
    let occurred_at = Some(time::to_proto(meta.occurred_at));
    EventBatch {
        events: events
            .iter()
            .map(|event| Envelope {
                event_id: Uuid::now_v7().to_string(),
                tenant_id: address.tenant_id().to_owned(),
                aggregate_type: address.aggregate_type().to_owned(),
                aggregate_id: address.aggregate_id().to_owned(),
                event_type: event.event_type().to_owned(),
                occurred_at,
                actor: meta.actor.clone(),
                causation_id: meta.command_id.clone(),
                correlation_id: meta.correlation_id.clone(),
                payload: event.encode_payload(),
            })
            .collect(),
    }
}
