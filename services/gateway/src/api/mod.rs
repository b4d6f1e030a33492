//! `GatewayConfigService`: the token's tenant's routes. Commands append `route` events; reads
//! come from this gateway's snapshot.
//!
//! - [`outbound`]: the policy backends are judged by when a route is configured.
//! - [`limits`]: the plan's bounds on routes and backends, and their defaults.
//! - [`policy`]: the role each RPC requires.

pub mod limits;
pub mod outbound;
pub mod policy;

use std::sync::Arc;

use tenantry_eventstore::{AggregateAddress, Repository};
use tenantry_kit::{ApiError, Clock, TenantContext, command, validate};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::gateway::v1::{
    self as api, gateway_config_service_server::GatewayConfigService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::route::{Route, RouteCommand};
use crate::snapshot::follow::Current;
use limits::{ConfigLimits, Creations};
use tenantry_kit::egress::Egress;

#[derive(Clone)]
pub struct GatewayApi {
    pub(crate) routes: Repository<Route>,
    pub(crate) snapshot: Current,
    pub(crate) clock: Arc<dyn Clock>,
    /// What backends may be: judged when a route is configured (and again at each connection).
    pub(crate) egress: Arc<Egress>,
    /// Defaults of the bounds on a tenant's routes and backends.
    pub(crate) limits: ConfigLimits,
    pub(crate) creations: Arc<Creations>,
}

/// Namespace of route ids derived from an idempotency key, so a retried creation finds the
/// route it created instead of making a second one.
const ROUTE_IDS: Uuid = Uuid::from_u128(0x0195_f0c4_5e1a_7c3b_9d2e_4a6b_8c0d_1e2f);

fn address(tenant: Uuid, route: Uuid) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<Route>(
        tenant.to_string(),
        route.to_string(),
    )?)
}

impl GatewayApi {
    async fn run<T: prost::Message>(
        &self,
        request: &Request<T>,
        route_id: Uuid,
        command: RouteCommand,
    ) -> Result<u64, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let tenant = caller.tenant()?;
        // Draining stays possible: it is how an operator answers an incident.
        let changes_config = matches!(
            command,
            RouteCommand::Create(_) | RouteCommand::Update(_) | RouteCommand::Remove
        );
        if changes_config
            && self
                .snapshot
                .load()
                .tenants
                .get(&tenant)
                .is_some_and(|t| t.config_blocked)
        {
            return Err(ApiError::ResourceExhausted(
                "a quota is used up and the plan blocks configuration changes until it resets"
                    .into(),
            ));
        }
        let meta = command::meta(request, &caller, &self.clock)?;
        Ok(self
            .routes
            .execute(&address(tenant, route_id)?, &command, &meta)
            .await?
            .position)
    }
}

#[tonic::async_trait]
impl GatewayConfigService for GatewayApi {
    async fn upsert_route(
        &self,
        request: Request<api::UpsertRouteRequest>,
    ) -> Result<Response<api::UpsertRouteResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant = caller.tenant()?;
        let mut route = request
            .get_ref()
            .route
            .clone()
            .ok_or_else(|| ApiError::invalid("route", "is required"))?;
        // The server names routes: an id in the request must be one of the caller's routes
        // (ids are per tenant, and a chosen one must never reach another tenant's state).
        let create = route.route_id.is_empty();
        let route_id = if create {
            if request.metadata().contains_key(command::IDEMPOTENCY_KEY) {
                let meta = command::meta(&request, &caller, &self.clock)?;
                Uuid::new_v5(&ROUTE_IDS, meta.command_id.as_bytes())
            } else {
                Uuid::now_v7()
            }
        } else {
            validate::uuid("route.route_id", &route.route_id)?
        };
        route.route_id = route_id.to_string();
        // A route may only name hosts its tenant owns.
        {
            let snapshot = self.snapshot.load();
            for (i, host) in route.hosts.iter_mut().enumerate() {
                *host = host.to_ascii_lowercase();
                if snapshot.tenant_of_host(host).map(|t| t.tenant_id) != Some(tenant) {
                    return Err(ApiError::invalid(
                        "route.hosts",
                        format!("[{i}] {host} is not a host of this tenant (its slug host or a verified domain)"),
                    )
                    .into());
                }
            }
        }
        let deployment = if route.deployment_id.is_empty() {
            None
        } else {
            let id = validate::uuid("route.deployment_id", &route.deployment_id)?;
            route.deployment_id = id.to_string();
            Some(id)
        };
        let config = pb::RouteUpserted {
            route_id: route.route_id.clone(),
            deployment_id: route.deployment_id.clone(),
            hosts: route.hosts.clone(),
            path_prefix: route.path_prefix.clone(),
            algorithm: route.algorithm,
            hash_header: route.hash_header.clone(),
            backends: route.backends.clone(),
            health_check: route.health_check.clone(),
            upstream_protocol: route.upstream_protocol,
        };
        // The cheap checks first, then the plan's bounds, then (resolving names) the policy.
        crate::domain::route::validate(&config).map_err(ApiError::from)?;
        // A deployment must be one of the caller's tenant's (another tenant's, or none, is
        // answered alike); the data plane looks instances up under the route's tenant anyway.
        if let Some(id) = deployment
            && !self.snapshot.load().deployments.contains(&(tenant, id))
        {
            return Err(ApiError::NotFound(format!("deployment {id}")).into());
        }
        self.limits.check_backends(
            self.snapshot.load().tenants.get(&tenant).map(|t| &**t),
            config.backends.len(),
        )?;
        outbound::vet_backends(&self.egress, &config.backends).await?;
        let position = if create {
            let _turn = self.creations.turn(tenant).await;
            {
                let snapshot = self.snapshot.load();
                let entry = snapshot.tenants.get(&tenant);
                // A retried creation (same idempotency key) is not a new route.
                let retry =
                    entry.is_some_and(|t| t.routes.iter().any(|r| *r.route_id == route.route_id));
                if !retry {
                    self.limits.check_routes(entry.map(|t| &**t))?;
                }
            }
            let position = self
                .run(&request, route_id, RouteCommand::Create(config))
                .await?;
            self.creations.applied(position).await;
            position
        } else {
            self.run(&request, route_id, RouteCommand::Update(config))
                .await?
        };
        route.drained.clear();
        Ok(Response::new(api::UpsertRouteResponse {
            route: Some(route),
            position,
        }))
    }

    async fn remove_route(
        &self,
        request: Request<api::RemoveRouteRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let route_id = validate::uuid("route_id", &request.get_ref().route_id)?;
        let position = self.run(&request, route_id, RouteCommand::Remove).await?;
        Ok(Response::new(api::CommandResponse { position }))
    }

    async fn list_routes(
        &self,
        request: Request<api::ListRoutesRequest>,
    ) -> Result<Response<api::ListRoutesResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let tenant = caller.tenant()?;
        let snapshot = self.snapshot.load();
        let routes = snapshot
            .tenants
            .get(&tenant)
            .map(|t| {
                t.routes
                    .iter()
                    .map(|r| api::Route {
                        route_id: r.route_id.to_string(),
                        hosts: r.hosts.to_vec(),
                        path_prefix: r.path_prefix.to_string(),
                        algorithm: r.algorithm as i32,
                        hash_header: r
                            .hash_header
                            .as_ref()
                            .map(|h| h.to_string())
                            .unwrap_or_default(),
                        // As configured: a deployment's instances are not the route's to set.
                        backends: r
                            .backends
                            .iter()
                            .filter(|_| r.deployment_id.is_none())
                            .map(|b| pb::Backend {
                                address: b.state.address.clone(),
                                weight: b.weight,
                            })
                            .collect(),
                        health_check: None,
                        upstream_protocol: if r.upstream_h2c {
                            pb::UpstreamProtocol::H2c as i32
                        } else {
                            pb::UpstreamProtocol::Unspecified as i32
                        },
                        deployment_id: r.deployment_id.map(|d| d.to_string()).unwrap_or_default(),
                        drained: r
                            .backends
                            .iter()
                            .filter(|b| b.drained)
                            .map(|b| b.state.address.clone())
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Response::new(api::ListRoutesResponse { routes }))
    }

    async fn drain_backend(
        &self,
        request: Request<api::DrainBackendRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let route_id = validate::uuid("route_id", &request.get_ref().route_id)?;
        let address = request.get_ref().address.clone();
        let position = self
            .run(&request, route_id, RouteCommand::Drain { address })
            .await?;
        Ok(Response::new(api::CommandResponse { position }))
    }

    async fn undrain_backend(
        &self,
        request: Request<api::DrainBackendRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let route_id = validate::uuid("route_id", &request.get_ref().route_id)?;
        let address = request.get_ref().address.clone();
        let position = self
            .run(&request, route_id, RouteCommand::Undrain { address })
            .await?;
        Ok(Response::new(api::CommandResponse { position }))
    }
}
