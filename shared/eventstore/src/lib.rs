//! Tenantry's event log on NATS JetStream.
//!
//! Every command appends one message (an `EventBatch`) to the subject of its aggregate,
//! `<root>.<tenant_id>.<aggregate_type>.<aggregate_id>`, with optimistic concurrency per subject
//! and deduplication by command id. Read models are projections of the log into Postgres.
//!
//! # Layout
//! - [`subject`]: validation of every token that reaches a subject, and subject building.
//! - [`streams`]: the streams the store owns (`EVENTS`, `USAGE`, `JOBS`): names, settings,
//!   creating or updating them.
//! - [`event`]: the envelope of an event, encoding and decoding of event batches.
//! - [`append`]: appends with an expected sequence and a message id, alone or pipelined.
//! - [`read`]: reading one aggregate's messages with direct gets.
//! - [`aggregate`]: the `decide`/`evolve` contract and the command loop with its cache.
//! - [`tail`]: a stream from a position, then live.
//! - [`follower`]: state kept in memory from the log (quarantines what it cannot apply,
//!   reopens its tail when it fails, reports whether it is live).
//! - [`projection`]: durable consumers applying batches to Postgres with a checkpoint, and
//!   waiting for a position (read your writes).

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod append;
mod error;
pub mod event;
pub mod follower;
pub mod projection;
pub mod read;
pub mod streams;
pub mod subject;
pub mod tail;
pub mod time;

#[doc(hidden)]
pub use prost as __prost;

pub use aggregate::{Aggregate, CommandMeta, ExecuteError, Executed, Repository};
pub use append::{AppendOutcome, AppendRequest};
pub use error::{InvalidToken, StoreError};
pub use event::{
    DecodeError, EventMeta, EventPayload, RawMessage, StoredEvent, StoredMessage, StreamMessage,
};
pub use follower::{Follow, FollowError, FollowState, Follower, FollowerStatus};
pub use projection::{Positions, Projection, ProjectionError, ProjectionRunner, RunnerConfig};
pub use streams::{EventStore, StreamKind, StreamNames};
pub use subject::{AggregateAddress, PLATFORM_TENANT};
pub use tail::{Tail, TailItem};
