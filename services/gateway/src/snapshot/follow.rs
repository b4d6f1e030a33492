//! Reads the log from its start into a [`Builder`] and swaps each new snapshot in.
//!
//! Catching up at start, a snapshot is published once the follower has nothing pending (or
//! every [`PUBLISH_EVERY`] messages, so a long replay still shows progress); after that, at
//! the end of every burst of events. The follower quarantines what it cannot decode and
//! reopens its tail when it fails; `/readyz` reports it while it is not live.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tenantry_eventstore::{EventStore, Follow, FollowError, Follower, StoreError, StoredMessage};
use tokio::sync::watch;

use super::builder::Builder;
use super::model::Snapshot;

const PUBLISH_EVERY: usize = 50_000;

/// The current snapshot, readable without a lock.
pub type Current = Arc<ArcSwap<Snapshot>>;

/// Feeds the builder and publishes its snapshots.
struct Publish {
    builder: Builder,
    out: Current,
    applied: watch::Sender<Option<u64>>,
    since_publish: usize,
    caught_up: bool,
}

impl Publish {
    fn publish(&mut self) {
        let snapshot = self.builder.build();
        let position = snapshot.position;
        self.out.store(snapshot);
        self.since_publish = 0;
        if self.caught_up {
            let _ = self.applied.send(Some(position));
        }
    }
}

impl Follow for Publish {
    fn apply(&mut self, message: &StoredMessage) -> Result<(), FollowError> {
        let undecodable = self.builder.apply(message);
        self.since_publish += 1;
        if !self.caught_up && self.since_publish >= PUBLISH_EVERY {
            self.publish();
        }
        // The message's other events applied; the bad one is quarantined by the follower.
        match undecodable.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn caught_up(&mut self, _position: u64) {
        self.caught_up = true;
        self.publish();
    }
}

/// Starts following; returns once the first complete snapshot is in place.
/// The receiver tells the position of the last event the published snapshot holds.
pub async fn follow(
    store: &EventStore,
    base_domain: &str,
    cluster: Arc<crate::limit::Cluster>,
    egress: Arc<tenantry_kit::egress::Egress>,
) -> Result<(Current, watch::Receiver<Option<u64>>, Follower), StoreError> {
    let current: Current = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let (applied, ready) = watch::channel(None::<u64>);
    let handler = Publish {
        builder: Builder::new(base_domain, cluster).with_egress(egress),
        out: current.clone(),
        applied,
        since_publish: 0,
        caught_up: false,
    };
    let follower = store
        .follow("gateway_snapshot", format!("{}.>", store.root()), handler)
        .await?;
    Ok((current, ready, follower))
}
