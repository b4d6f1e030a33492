//! Which tenants may change their configuration, as the event log says: every service follows
//! the tenant service's `tenant` events into this directory, and the interceptor refuses a
//! write (an RPC whose role is above viewer) by a member of a suspended tenant, or of one
//! marked for decommission, with `FAILED_PRECONDITION` naming why. Reads still work, and
//! platform admins (who reactivate tenants) are not refused.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::{
    EventPayload, EventStore, Follow, FollowError, Follower, StoredMessage, subject,
};
use uuid::Uuid;

/// What a tenant's members may do to its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Active,
    /// Suspended by a platform admin (late payment, abuse): read-only until reactivated.
    Suspended,
    /// On its way out: read-only.
    Decommissioning,
}

/// Every tenant's standing (a tenant not in it is active: it may not be created yet).
pub struct TenantDirectory {
    standings: Arc<RwLock<HashMap<Uuid, Standing>>>,
    follower: Follower,
}

struct Apply(Arc<RwLock<HashMap<Uuid, Standing>>>);

impl Follow for Apply {
    fn apply(&mut self, message: &StoredMessage) -> Result<(), FollowError> {
        let events = message.events::<TenantEvent>()?;
        let mut standings = self.0.write().unwrap_or_else(|p| p.into_inner());
        for stored in events {
            let Ok(tenant) = Uuid::try_parse(&stored.meta.tenant_id) else {
                continue;
            };
            let standing = match stored.event {
                TenantEvent::Suspended(_) => Standing::Suspended,
                TenantEvent::Reactivated(_) => Standing::Active,
                TenantEvent::MarkedForDecommission(_) => Standing::Decommissioning,
                _ => continue,
            };
            // Only the exceptions are kept: active is the default.
            if standing == Standing::Active {
                standings.remove(&tenant);
            } else {
                standings.insert(tenant, standing);
            }
        }
        Ok(())
    }
}

impl TenantDirectory {
    /// Follows the log's tenant events from the start; returns once caught up.
    pub async fn follow(store: &EventStore) -> Result<Arc<Self>, tenantry_eventstore::StoreError> {
        let standings = Arc::new(RwLock::new(HashMap::new()));
        let filter = subject::type_filter(store.root(), TenantEvent::AGGREGATE_TYPE)?;
        let follower = store
            .follow("tenant_standings", filter, Apply(standings.clone()))
            .await?;
        Ok(Arc::new(Self {
            standings,
            follower,
        }))
    }

    pub fn standing(&self, tenant: Uuid) -> Standing {
        self.standings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            .copied()
            .unwrap_or(Standing::Active)
    }

    /// The follower behind the directory, for `/readyz`.
    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// Why `tenant`'s members may not write now, if they may not.
    pub fn refuses_writes(&self, tenant: Uuid) -> Option<String> {
        match self.standing(tenant) {
            Standing::Active => None,
            Standing::Suspended => Some(format!(
                "tenant {tenant} is suspended: its configuration is read-only until a platform \
                 admin reactivates it"
            )),
            Standing::Decommissioning => Some(format!(
                "tenant {tenant} is marked for decommission: its configuration is read-only"
            )),
        }
    }
}
