//! Reads the log from its start into a [`Builder`] and swaps each new snapshot in.
//!
//! Catching up at start, a snapshot is published once the consumer has nothing pending (or
//! every [`PUBLISH_EVERY`] messages, so a long replay still shows progress); after that, at
//! the end of every burst of events.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tenantry_eventstore::{EventStore, StoreError};
use tokio::sync::watch;

use super::builder::Builder;
use super::model::Snapshot;

const PUBLISH_EVERY: usize = 50_000;

/// The current snapshot, readable without a lock.
pub type Current = Arc<ArcSwap<Snapshot>>;

/// Starts following; returns once the first complete snapshot is in place.
/// The receiver tells the position of the last event the published snapshot holds.
pub async fn follow(
    store: &EventStore,
    base_domain: &str,
    cluster: Arc<crate::limit::Cluster>,
    egress: Arc<tenantry_kit::egress::Egress>,
) -> Result<(Current, watch::Receiver<Option<u64>>), StoreError> {
    let mut tail = store.tail(format!("{}.>", store.root())).await?;
    let initially_pending = tail.pending_at_start;

    let current: Current = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let (applied, mut ready) = watch::channel(None::<u64>);
    let mut builder = Builder::new(base_domain, cluster).with_egress(egress);
    let out = current.clone();
    let mut caught_up = initially_pending == 0;
    if caught_up {
        let _ = applied.send(Some(0));
    }
    tokio::spawn(async move {
        let mut since_publish = 0usize;
        while let Some((stored, pending)) = tail.next().await {
            match stored {
                Ok(stored) => builder.apply(&stored),
                Err(e) => tracing::error!(error = %e, "snapshot: bad message"),
            }
            since_publish += 1;
            if pending == 0 || (!caught_up && since_publish >= PUBLISH_EVERY) {
                let snapshot = builder.build();
                let position = snapshot.position;
                out.store(snapshot);
                since_publish = 0;
                if pending == 0 {
                    caught_up = true;
                }
                if caught_up {
                    let _ = applied.send(Some(position));
                }
            }
        }
    });
    let _ = ready.wait_for(Option::is_some).await;
    Ok((current, ready))
}
