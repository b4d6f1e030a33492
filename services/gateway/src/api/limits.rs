//! Bounds on a tenant's configuration: routes per tenant and backends per route, from its
//! plan (billing's `PlanLimitsChanged`) or, where the plan sets none, these defaults. Each
//! route's backends are health-checked and connected to by every gateway, so configuration
//! is load the platform carries on the tenant's behalf.

use std::sync::Arc;
use std::time::Duration;

use tenantry_kit::ApiError;
use tokio::sync::{Mutex, OwnedMutexGuard, watch};
use uuid::Uuid;

use crate::snapshot::TenantEntry;

/// The defaults, for plans that set no bound.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ConfigLimits {
    /// Routes a tenant may have when its plan sets no bound (`max_routes`).
    #[arg(
        id = "gateway-max-routes-per-tenant",
        long = "gateway-max-routes-per-tenant",
        env = "TENANTRY_GATEWAY_MAX_ROUTES_PER_TENANT",
        default_value_t = 100
    )]
    pub max_routes_per_tenant: u32,

    /// Backends a route may list when the tenant's plan sets no bound
    /// (`max_backends_per_route`; never more than 64).
    #[arg(
        id = "gateway-max-backends-per-route",
        long = "gateway-max-backends-per-route",
        env = "TENANTRY_GATEWAY_MAX_BACKENDS_PER_ROUTE",
        default_value_t = 16
    )]
    pub max_backends_per_route: u32,
}

impl Default for ConfigLimits {
    fn default() -> Self {
        Self {
            max_routes_per_tenant: 100,
            max_backends_per_route: 16,
        }
    }
}

impl ConfigLimits {
    /// Refuses `backends` backends on one route of `tenant` beyond its plan's bound.
    pub fn check_backends(
        &self,
        tenant: Option<&TenantEntry>,
        backends: usize,
    ) -> Result<(), ApiError> {
        let max = tenant
            .map(|t| t.config_limits.max_backends_per_route)
            .filter(|m| *m > 0)
            .unwrap_or(self.max_backends_per_route);
        if backends > max as usize {
            return Err(ApiError::ResourceExhausted(format!(
                "max_backends_per_route: the plan allows {max} backends per route, {backends} given"
            )));
        }
        Ok(())
    }

    /// Refuses a new route of `tenant` once it has as many as its plan allows.
    pub fn check_routes(&self, tenant: Option<&TenantEntry>) -> Result<(), ApiError> {
        let max = tenant
            .map(|t| t.config_limits.max_routes)
            .filter(|m| *m > 0)
            .unwrap_or(self.max_routes_per_tenant);
        let routes = tenant.map_or(0, |t| t.routes.len());
        if routes >= max as usize {
            return Err(ApiError::ResourceExhausted(format!(
                "max_routes: the tenant has {routes} routes, as many as its plan allows"
            )));
        }
        Ok(())
    }
}

/// Route creations of one tenant, one at a time on this gateway: each is counted against the
/// bound only after the previous one is in the snapshot, so creations sent at once cannot all
/// pass the count before any lands. (Replicas each serialise their own: together they may
/// exceed a bound by at most one route per replica, for the moment it takes to apply one.)
#[derive(Debug)]
pub struct Creations {
    stripes: Vec<Arc<Mutex<()>>>,
    applied: watch::Receiver<Option<u64>>,
}

/// Longest a creation waits for its own event in the snapshot before letting the next in.
const APPLY_WAIT: Duration = Duration::from_secs(5);

impl Creations {
    pub fn new(applied: watch::Receiver<Option<u64>>) -> Self {
        Self {
            stripes: (0..64).map(|_| Arc::new(Mutex::new(()))).collect(),
            applied,
        }
    }

    /// The turn of `tenant` (tenants sharing a stripe wait for each other: creations are rare).
    pub async fn turn(&self, tenant: Uuid) -> OwnedMutexGuard<()> {
        let stripe = (tenant.as_u128() % self.stripes.len() as u128) as usize;
        self.stripes[stripe].clone().lock_owned().await
    }

    /// Waits until the snapshot holds the log up to `position` (bounded).
    pub async fn applied(&self, position: u64) {
        let mut applied = self.applied.clone();
        let _ = tokio::time::timeout(
            APPLY_WAIT,
            applied.wait_for(|p| p.is_some_and(|p| p >= position)),
        )
        .await;
    }
}
