//! `GatewayConfigService`: the token's tenant's routes. Commands append `route` events; reads
//! come from this gateway's snapshot.

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

#[derive(Clone)]
pub struct GatewayApi {
    pub(crate) routes: Repository<Route>,
    pub(crate) snapshot: Current,
    pub(crate) clock: Arc<dyn Clock>,
}

fn caller_tenant(caller: &TenantContext) -> Result<Uuid, ApiError> {
    caller.tenant_id.ok_or_else(|| {
        ApiError::FailedPrecondition("routes belong to a tenant; use a token issued for one".into())
    })
}

fn address(tenant: Uuid, route: Uuid) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::new(
        tenant.to_string(),
        "route",
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
        let tenant = caller_tenant(&caller)?;
        // Draining stays possible: it is how an operator answers an incident.
        let changes_config = matches!(command, RouteCommand::Upsert(_) | RouteCommand::Remove);
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
        let tenant = caller_tenant(&caller)?;
        let mut route = request
            .get_ref()
            .route
            .clone()
            .ok_or_else(|| ApiError::invalid("route", "is required"))?;
        let route_id = if route.route_id.is_empty() {
            Uuid::now_v7()
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
        let config = pb::RouteUpserted {
            route_id: route.route_id.clone(),
            hosts: route.hosts.clone(),
            path_prefix: route.path_prefix.clone(),
            algorithm: route.algorithm,
            hash_header: route.hash_header.clone(),
            backends: route.backends.clone(),
            health_check: route.health_check.clone(),
            upstream_protocol: route.upstream_protocol,
        };
        let position = self
            .run(&request, route_id, RouteCommand::Upsert(config))
            .await?;
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
        let tenant = caller_tenant(&caller)?;
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
                        backends: r
                            .backends
                            .iter()
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
