//! State kept in memory from the log (the gateway's snapshot, the API-key directory): one
//! follower type for all of it.
//!
//! A follower reads a [`Tail`] into a [`Follow`] handler. What it guarantees:
//! - **Nothing is skipped silently.** A message that does not decode, or that the handler
//!   refuses, is quarantined: logged with its position and error, counted in
//!   `tenantry_follower_quarantined_total`, kept in the status; the follower goes on.
//! - **It never freezes.** When its consumer fails (NATS away, the consumer deleted, missed
//!   heartbeats) it opens a new tail after the last position it applied, with backoff,
//!   until it succeeds.
//! - **Its state is visible.** [`FollowerStatus`] says whether it is live, catching up or
//!   interrupted, so `/readyz` can refuse traffic while its state may be stale (a revoked
//!   key must not keep working because the directory stopped listening).

use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::event::{DecodeError, StoredMessage, StreamMessage};
use crate::streams::{EventStore, StreamKind};
use crate::tail::{Tail, TailItem};

/// Why a handler refused a message.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Refused(String),
}

/// What a follower feeds.
pub trait Follow<M = StoredMessage>: Send + 'static {
    /// Applies one message. An error quarantines the message; the follower goes on.
    fn apply(&mut self, message: &M) -> Result<(), FollowError>;

    /// Nothing more is pending after `position`: state applied so far may be published.
    fn caught_up(&mut self, _position: u64) {}
}

/// Where a follower is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowState {
    /// Replaying what the stream held; `pending` messages to go.
    CatchingUp { pending: u64 },
    /// Applied everything; new messages apply as they arrive.
    Live,
    /// The consumer failed and a new one could not be opened yet: the state may be stale.
    Interrupted { reason: String },
}

/// A message the follower could not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub position: u64,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerStatus {
    /// Position of the last message applied (or quarantined).
    pub position: u64,
    pub state: FollowState,
    /// Messages quarantined since start.
    pub quarantined: u64,
    /// The last one, for `/readyz` and logs.
    pub last_quarantined: Option<Quarantined>,
}

impl FollowerStatus {
    /// Live: the state holds everything the stream had when it was last heard from.
    pub fn is_live(&self) -> bool {
        self.state == FollowState::Live
    }
}

/// A running follower; dropping every handle (and clone of its status) stops it.
#[derive(Clone)]
pub struct Follower {
    name: String,
    status: watch::Receiver<FollowerStatus>,
}

/// How long a follower waits before opening a new tail, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often an idle follower asks the server whether its consumer still exists.
const PROBE_EVERY: Duration = Duration::from_secs(1);

impl EventStore {
    /// Follows the event log's messages matching `filter` into `handler`, from the start,
    /// and returns once the handler has caught up with what the log held (the start of a
    /// service waits for its in-memory state). Fails only if the log cannot be read at all.
    pub async fn follow<F: Follow>(
        &self,
        name: &str,
        filter: String,
        handler: F,
    ) -> Result<Follower, StoreError> {
        let follower = self
            .follow_after(name, StreamKind::Events, filter, 0, handler)
            .await?;
        follower.caught_up().await;
        Ok(follower)
    }

    /// Follows `kind`'s messages matching `filter` after `position` into `handler`, and
    /// returns at once (see [`Follower::caught_up`]).
    pub async fn follow_after<M: StreamMessage, F: Follow<M>>(
        &self,
        name: &str,
        kind: StreamKind,
        filter: String,
        position: u64,
        mut handler: F,
    ) -> Result<Follower, StoreError> {
        let tail: Tail<M> = self.tail_after(kind, filter.clone(), position).await?;
        let initial = FollowerStatus {
            position,
            state: match tail.pending_at_start {
                0 => FollowState::Live,
                pending => FollowState::CatchingUp { pending },
            },
            quarantined: 0,
            last_quarantined: None,
        };
        if tail.pending_at_start == 0 {
            handler.caught_up(position);
        }
        let (status, receiver) = watch::channel(initial);
        let run = Run {
            store: self.clone(),
            name: name.to_owned(),
            kind,
            filter,
            status,
        };
        tokio::spawn(run.run(tail, handler));
        Ok(Follower {
            name: name.to_owned(),
            status: receiver,
        })
    }
}

impl Follower {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn status(&self) -> FollowerStatus {
        self.status.borrow().clone()
    }

    /// A receiver of every change of the status.
    pub fn watch(&self) -> watch::Receiver<FollowerStatus> {
        self.status.clone()
    }

    /// Waits until the follower is live (returns at once if it is).
    pub async fn caught_up(&self) {
        let mut status = self.status.clone();
        let _ = status.wait_for(FollowerStatus::is_live).await;
    }
}

struct Run {
    store: EventStore,
    name: String,
    kind: StreamKind,
    filter: String,
    status: watch::Sender<FollowerStatus>,
}

impl Run {
    async fn run<M: StreamMessage, F: Follow<M>>(self, mut tail: Tail<M>, mut handler: F) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let reason = self.drain(&mut tail, &mut handler).await;
            if self.status.is_closed() {
                return; // nobody reads this state any more
            }
            metrics::counter!("tenantry_follower_interruptions_total", "follower" => self.name.clone()).increment(1);
            tracing::warn!(follower = %self.name, %reason, "follower interrupted; reopening");
            self.status.send_modify(|s| {
                s.state = FollowState::Interrupted {
                    reason: reason.clone(),
                }
            });
            // Reopen after the last applied position until the stream answers.
            loop {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if self.status.is_closed() {
                    return;
                }
                let after = self.status.borrow().position;
                match self
                    .store
                    .tail_after::<M>(self.kind, self.filter.clone(), after)
                    .await
                {
                    Ok(reopened) => {
                        tail = reopened;
                        backoff = Duration::from_millis(50);
                        let pending = tail.pending_at_start;
                        tracing::info!(follower = %self.name, after, pending, "follower resumed");
                        if pending == 0 {
                            handler.caught_up(after);
                        }
                        self.status.send_modify(|s| {
                            s.state = match pending {
                                0 => FollowState::Live,
                                pending => FollowState::CatchingUp { pending },
                            }
                        });
                        break;
                    }
                    Err(e) => {
                        self.status.send_modify(|s| {
                            s.state = FollowState::Interrupted {
                                reason: e.to_string(),
                            }
                        });
                    }
                }
            }
        }
    }

    /// Applies messages until the tail fails; returns why. While no message arrives, the
    /// tail's consumer is probed every [`PROBE_EVERY`].
    async fn drain<M: StreamMessage, F: Follow<M>>(
        &self,
        tail: &mut Tail<M>,
        handler: &mut F,
    ) -> String {
        loop {
            let next = tokio::select! {
                item = tail.next() => Some(item),
                () = tokio::time::sleep(PROBE_EVERY) => None,
            };
            let Some(item) = next else {
                if self.status.is_closed() {
                    return "stopped".into();
                }
                match tail.probe().await {
                    Ok(pending) => {
                        self.status.send_if_modified(|s| {
                            let state = match pending {
                                0 => FollowState::Live,
                                pending => FollowState::CatchingUp { pending },
                            };
                            let changed = s.state != state;
                            s.state = state;
                            changed
                        });
                        continue;
                    }
                    Err(e) => return e.to_string(),
                }
            };
            let Some(item) = item else { break };
            if self.status.is_closed() {
                return "stopped".into();
            }
            let (position, decoded, pending) = match item {
                TailItem::Message {
                    position,
                    decoded,
                    pending,
                } => (position, decoded, pending),
                TailItem::Interrupted(reason) => return reason,
            };
            let outcome = match decoded {
                Ok(message) => handler.apply(&message).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = &outcome {
                metrics::counter!("tenantry_follower_quarantined_total", "follower" => self.name.clone()).increment(1);
                tracing::error!(follower = %self.name, position, %error, "follower quarantined a message it cannot apply");
            }
            if pending == 0 {
                handler.caught_up(position);
            }
            self.status.send_modify(|s| {
                s.position = s.position.max(position);
                if let Err(error) = outcome {
                    s.quarantined += 1;
                    s.last_quarantined = Some(Quarantined { position, error });
                }
                s.state = match pending {
                    0 => FollowState::Live,
                    pending => FollowState::CatchingUp { pending },
                };
            });
        }
        "consumer ended".into()
    }
}
