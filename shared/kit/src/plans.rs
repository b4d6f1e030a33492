//! Each tenant's plan limits, as billing's `subscription` events say: the services that own a
//! limit of the plan (the tenant service's custom domains, auth's seats) follow billing's
//! `plan_limits_changed` into this directory and read the cap from it before deciding a
//! command. Only the last `PlanLimitsChanged` of each tenant is kept; billing's other
//! subscription events are read and ignored.
//!
//! Started by the services that need it, in their `build`, and handed to the template with
//! `Parts::follower` so `/readyz` waits for it:
//!
//! ```ignore
//! let plans = PlanDirectory::follow(&ctx.store).await?;
//! Parts::new(handle, policy).follower(plans.follower().clone())
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_eventstore::{
    EventPayload, EventStore, Follow, FollowError, Follower, StoredMessage, subject,
};
use tenantry_proto::events::v1::PlanLimitsChanged;
use uuid::Uuid;

/// Every tenant's current plan limits (a tenant not in it has no plan on the log yet: every
/// limit is the service's default).
pub struct PlanDirectory {
    limits: Arc<RwLock<HashMap<Uuid, PlanLimitsChanged>>>,
    follower: Follower,
}

struct Apply(Arc<RwLock<HashMap<Uuid, PlanLimitsChanged>>>);

impl Follow for Apply {
    fn apply(&mut self, message: &StoredMessage) -> Result<(), FollowError> {
        let events = message.events::<SubscriptionEvent>()?;
        let mut limits = self.0.write().unwrap_or_else(|p| p.into_inner());
        for stored in events {
            let SubscriptionEvent::PlanLimitsChanged(changed) = stored.event else {
                continue;
            };
            let Ok(tenant) = Uuid::try_parse(&stored.meta.tenant_id) else {
                continue;
            };
            limits.insert(tenant, changed);
        }
        Ok(())
    }
}

impl PlanDirectory {
    /// Follows the log's subscription events from the start; returns once caught up.
    pub async fn follow(store: &EventStore) -> Result<Arc<Self>, tenantry_eventstore::StoreError> {
        let limits = Arc::new(RwLock::new(HashMap::new()));
        let filter = subject::type_filter(store.root(), SubscriptionEvent::AGGREGATE_TYPE)?;
        let follower = store
            .follow("plan_limits", filter, Apply(limits.clone()))
            .await?;
        Ok(Arc::new(Self { limits, follower }))
    }

    /// `tenant`'s plan limits, if billing has set any.
    pub fn limits(&self, tenant: Uuid) -> Option<PlanLimitsChanged> {
        self.limits
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
            .cloned()
    }

    /// One limit of `tenant`'s plan, read by `pick`, as a count: the plan's value when it sets
    /// one (> 0), else `default` (no plan yet, or a plan that leaves it to the service).
    pub fn cap(
        &self,
        tenant: Uuid,
        pick: impl Fn(&PlanLimitsChanged) -> u32,
        default: usize,
    ) -> usize {
        let limits = self.limits.read().unwrap_or_else(|p| p.into_inner());
        cap_of(limits.get(&tenant), pick, default)
    }

    /// The follower behind the directory, for `/readyz`.
    pub fn follower(&self) -> &Follower {
        &self.follower
    }

    /// Waits until the directory has applied the log up to `position` (a test that appends a
    /// plan waits for it); false if `timeout` passed first.
    pub async fn applied(&self, position: u64, timeout: Duration) -> bool {
        let mut status = self.follower.watch();
        tokio::time::timeout(timeout, status.wait_for(|s| s.position >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// `pick(plan)` when the plan sets it (> 0), else `default`.
fn cap_of(
    plan: Option<&PlanLimitsChanged>,
    pick: impl Fn(&PlanLimitsChanged) -> u32,
    default: usize,
) -> usize {
    match plan.map(pick) {
        Some(value) if value > 0 => usize::try_from(value).unwrap_or(usize::MAX),
        _ => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_limit_is_its_number_and_zero_or_no_plan_is_the_services_default() {
        let plan = |custom_domains| PlanLimitsChanged {
            custom_domains,
            ..Default::default()
        };
        let domains = |p: &PlanLimitsChanged| p.custom_domains;
        assert_eq!(cap_of(Some(&plan(2)), domains, 20), 2);
        assert_eq!(cap_of(Some(&plan(100)), domains, 20), 100);
        assert_eq!(cap_of(Some(&plan(0)), domains, 20), 20);
        assert_eq!(cap_of(None, domains, 20), 20);
    }
}
