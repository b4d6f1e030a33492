//! The `tenants` read model: one row per tenant, folded from the log by the same `evolve` the
//! aggregate uses.
//!
//! A batch costs a few statements whatever its size: read the rows it touches that are not
//! in memory, fold the events, insert the new rows and update the others with `UNNEST`.
//! Rows the runner committed stay in memory (bounded), so a busy tenant is not read back
//! from Postgres for every batch.

pub mod queries;

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use tenantry_eventstore::{
    Aggregate, Projection, ProjectionError, StoredMessage, aggregate::fold, subject,
};
use tenantry_kit::db::{Scope, set_scope};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::Tenant;

mod write;

pub const NAME: &str = "tenant_tenants";

/// Most rows kept in memory between batches (about 1 KiB each).
const CACHE_ROWS: usize = 200_000;

#[derive(Default)]
pub struct TenantsProjection {
    rows: Mutex<Rows>,
}

#[derive(Default)]
struct Rows {
    /// As committed in Postgres by this runner.
    committed: HashMap<Uuid, Tenant>,
    /// Written by the current, not yet committed, transaction.
    pending: HashMap<Uuid, Tenant>,
}

impl Projection for TenantsProjection {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        NAME
    }

    fn filter(&self, root: &str) -> String {
        // Aggregate types are constants: a valid token by construction.
        subject::type_filter(root, Tenant::TYPE).unwrap_or_default()
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        // The projection writes every tenant's rows.
        set_scope(tx, Scope::Platform).await?;
        let mut rows = self.rows.lock().await;
        rows.pending.clear();

        // The tenants of the batch, in order of first appearance.
        let mut seen = HashSet::new();
        let mut touched = Vec::new();
        for message in messages {
            let id = aggregate_id(message).ok_or_else(|| {
                ProjectionError::Other(format!(
                    "message {} has no tenant aggregate id",
                    message.position
                ))
            })?;
            if seen.insert(id) {
                touched.push(id);
            }
        }
        let mut states: HashMap<Uuid, Tenant> = HashMap::with_capacity(touched.len());
        let missing: Vec<Uuid> = touched
            .iter()
            .filter(|id| match rows.committed.get(id) {
                Some(t) => {
                    states.insert(**id, t.clone());
                    false
                }
                None => true,
            })
            .copied()
            .collect();
        let stored = write::load(tx, &missing).await?;
        let existing: HashSet<Uuid> = states
            .keys()
            .copied()
            .chain(stored.keys().copied())
            .collect();
        states.extend(stored);

        for message in messages {
            let id = aggregate_id(message).unwrap_or_default();
            fold(states.entry(id).or_default(), message)?;
        }
        let (updates, inserts): (Vec<&Tenant>, Vec<&Tenant>) = touched
            .iter()
            .filter_map(|id| states.get(id))
            .partition(|t| t.id.is_some_and(|id| existing.contains(&id)));
        write::insert(tx, &inserts).await?;
        write::update(tx, &updates).await?;
        rows.pending = states;
        Ok(())
    }

    async fn committed(&self) {
        let mut rows = self.rows.lock().await;
        let pending = std::mem::take(&mut rows.pending);
        if rows.committed.len() + pending.len() > CACHE_ROWS {
            rows.committed.clear();
        }
        rows.committed.extend(pending);
    }

    async fn reset(&self) {
        *self.rows.lock().await = Rows::default();
    }
}

fn aggregate_id(message: &StoredMessage) -> Option<Uuid> {
    message
        .batch
        .events
        .first()
        .and_then(|e| Uuid::try_parse(&e.aggregate_id).ok())
}
