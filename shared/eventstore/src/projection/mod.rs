//! Projections: read models kept up to date from the log.
//!
//! Each projection has a durable pull consumer (`<name>`) and a row in
//! `projection_checkpoints(name, position)` in its own schema. Messages arrive in batches; a
//! batch is applied in one Postgres transaction together with the new checkpoint, and messages
//! at or below the checkpoint are skipped, so redelivery is harmless and a crash anywhere loses
//! nothing and applies nothing twice. On an error the transaction is rolled back, the batch is
//! nak'ed with an exponential backoff and read again from the checkpoint: a projection never
//! skips an event silently.

mod checkpoint;
mod positions;
mod runner;

use std::future::Future;

use thiserror::Error;

use crate::event::StoredMessage;

pub use checkpoint::read_checkpoint;
pub use positions::{Lagging, Positions};
pub use runner::{ProjectionRunner, RunnerConfig};

/// A read model built from the log.
pub trait Projection: Send + Sync + 'static {
    /// Checkpoint row name and default consumer name, e.g. `tenant_tenants`.
    fn name(&self) -> &str;

    /// The subject filter of the messages it reads, given the log's subject root.
    fn filter(&self, root: &str) -> String;

    /// Applies messages (in log order, none at or below the checkpoint) inside `tx`.
    fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        messages: &[StoredMessage],
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
