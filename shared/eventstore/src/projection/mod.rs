//! Projections: read models kept up to date from the log.
//!
//! Each projection has a durable pull consumer (`<name>`) and a row in
//! `projection_checkpoints(name, position)` in its own schema. Messages arrive in batches; a
//! batch is applied in one Postgres transaction together with the new checkpoint, and messages
//! at or below the checkpoint are skipped, so redelivery is harmless and a crash anywhere loses
//! nothing and applies nothing twice. The next batch is fetched and decoded while one is applied.
//! On an error the transaction is rolled back and, after an exponential backoff, the consumer
//! is recreated at the checkpoint and the batch read again: a projection never
//! skips an event silently. An event that cannot be decoded is the one exception that is not
//! retried (it would fail forever): it is quarantined — recorded in
//! `projection_quarantine(projection, position, subject, error)` in the same transaction that
//! moves the checkpoint past it, counted in `tenantry_projection_quarantined_total` — and the
//! projection goes on.
//!
//! The store owns these tables: [`ensure_tables`] creates them in a service's schema.

mod checkpoint;
mod positions;
mod runner;

use std::future::Future;

use thiserror::Error;

use crate::event::StreamMessage;
use crate::streams::StreamKind;

pub use checkpoint::{ensure_tables, read_checkpoint};
pub use positions::{Lagging, Positions};
pub use runner::{ProjectionRunner, RunnerConfig};

/// A read model built from the log.
pub trait Projection: Send + Sync + 'static {
    /// What it reads: the event log's [`crate::StoredMessage`]s, or another stream's
    /// [`crate::RawMessage`]s.
    type Message: StreamMessage;
    /// The stream it reads.
    const STREAM: StreamKind = StreamKind::Events;

    /// Checkpoint row name and default consumer name, e.g. `tenant_tenants`.
    fn name(&self) -> &str;

    /// The subject filter of the messages it reads, given its stream's subject root.
    fn filter(&self, root: &str) -> String;

    /// Applies messages (in log order, none at or below the checkpoint) inside `tx`.
    fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        messages: &[Self::Message],
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// The transaction of the last `apply` committed: state a projection keeps in memory
    /// between batches may now be trusted.
    fn committed(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A runner starts (or restarts after a failure): drop anything kept in memory, since
    /// another runner may have written since.
    fn reset(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

#[derive(Debug, Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Store(#[from] crate::StoreError),
    #[error("cannot decode event: {0}")]
    Decode(#[from] crate::DecodeError),
    #[error("{0}")]
    Other(String),
}

impl ProjectionError {
    /// The message itself is at fault (it will never decode): quarantine, don't retry.
    pub fn is_undecodable(&self) -> bool {
        matches!(
            self,
            Self::Decode(_) | Self::Store(crate::StoreError::Corrupt(_))
        )
    }
}
