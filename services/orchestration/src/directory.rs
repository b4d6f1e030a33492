//! Every deployment as the log says, in memory: the reconciler's desired state and the
//! queries' answers. Followed from `evt.*.deployment.*`, folded with the aggregate's own
//! `evolve`, so the directory and a command's state can never disagree on what an event
//! means.
//!
//! Kept in memory rather than in Postgres: a deployment is small and a tenant has a handful,
//! and the reconciler needs all of them on every pass anyway.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tenantry_contracts::orchestration::DeploymentEvent;
use tenantry_eventstore::{
    Aggregate, EventPayload, EventStore, Follow, FollowError, Follower, StoredMessage, subject,
};
use uuid::Uuid;

use crate::domain::{Deployment, Status};

/// (tenant, deployment) → its state.
type Map = HashMap<(Uuid, Uuid), Deployment>;

pub struct Directory {
    deployments: Arc<RwLock<Map>>,
    follower: Follower,
}

struct Apply(Arc<RwLock<Map>>);

impl Follow for Apply {
    fn apply(&mut self, message: &StoredMessage) -> Result<(), FollowError> {
        let events = message.events::<DeploymentEvent>()?;
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        for stored in events {
            let (Ok(tenant), Ok(id)) = (
                Uuid::try_parse(&stored.meta.tenant_id),
                Uuid::try_parse(&stored.meta.aggregate_id),
            ) else {
                return Err(FollowError::Refused(format!(
                    "deployment event with ids {} / {}",
                    stored.meta.tenant_id, stored.meta.aggregate_id
                )));
            };
            map.entry((tenant, id))
                .or_default()
                .evolve(&stored.event, &stored.meta);
        }
        Ok(())
    }
}

impl Directory {
    /// Follows every deployment's events from the start; returns once caught up.
    pub async fn follow(store: &EventStore) -> Result<Arc<Self>, tenantry_eventstore::StoreError> {
        let deployments = Arc::new(RwLock::new(HashMap::new()));
        let filter = subject::type_filter(store.root(), DeploymentEvent::AGGREGATE_TYPE)?;
        let follower = store
            .follow("deployments", filter, Apply(deployments.clone()))
            .await?;
        Ok(Arc::new(Self {
            deployments,
            follower,
        }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.deployments.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, tenant: Uuid, id: Uuid) -> Option<Deployment> {
        self.read().get(&(tenant, id)).cloned()
    }

    /// A tenant's deployments, oldest first.
    pub fn of_tenant(&self, tenant: Uuid) -> Vec<(Uuid, Deployment)> {
        let mut found: Vec<(Uuid, Deployment)> = self
            .read()
            .iter()
            .filter(|((t, _), _)| *t == tenant)
            .map(|((_, id), d)| (*id, d.clone()))
            .collect();
        found.sort_by_key(|(id, _)| *id);
        found
    }

    /// How many of a tenant's deployments count against its plan (all but decommissioned).
    pub fn live_count(&self, tenant: Uuid) -> usize {
        self.read()
            .iter()
            .filter(|((t, _), d)| *t == tenant && d.status != Status::Decommissioned)
            .count()
    }

    /// Every deployment (the reconciler's pass).
    pub fn all(&self) -> Vec<((Uuid, Uuid), Deployment)> {
        self.read().iter().map(|(k, d)| (*k, d.clone())).collect()
    }

    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// Waits until the directory has applied the log up to `position`; false if `timeout`
    /// passed first.
    pub async fn applied(&self, position: u64, timeout: Duration) -> bool {
        let mut status = self.follower.watch();
        tokio::time::timeout(timeout, status.wait_for(|s| s.position >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}
