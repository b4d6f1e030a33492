//! The gRPC API of the billing service.
//!
//! Every handler takes the caller from the [`TenantContext`] (never the body), validates its
//! input (`INVALID_ARGUMENT` names the field), checks the tenant against the caller
//! (`NOT_FOUND` for another tenant's), then runs a command or a read.

pub mod convert;
pub mod policy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tenantry_eventstore::time;
use tenantry_eventstore::{Executed, Positions, Repository};
use tenantry_kit::{ApiError, Clock, TenantContext, command, validate};
use tenantry_proto::billing::v1::{self as api, billing_service_server::BillingService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::period::month_start;
use crate::domain::{
    CatalogEntry, Plan, PlanCommand, Subscription, SubscriptionCommand, plan, subscription,
};
use crate::projection::queries;

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct BillingApi {
    pub(crate) plans: Repository<CatalogEntry>,
    pub(crate) subscriptions: Repository<Subscription>,
    pub(crate) pool: PgPool,
    /// The catalog's and the subscriptions' read models.
    pub(crate) catalog_positions: Positions,
    pub(crate) positions: Positions,
    pub(crate) clock: Arc<dyn Clock>,
    /// Longest a query waits for `min_position`.
    pub(crate) read_wait: Duration,
}

fn tenant_id_of(value: &str) -> Result<Uuid, ApiError> {
    validate::uuid("tenant_id", value)
}

fn response<A>(executed: Executed<A>) -> Response<api::CommandResponse> {
    Response::new(api::CommandResponse {
        position: executed.position,
    })
}

impl BillingApi {
    async fn wait(&self, positions: &Positions, min_position: u64) -> Result<(), ApiError> {
        if min_position > 0 {
            positions.wait_for(min_position, self.read_wait).await?;
        }
        Ok(())
    }

    /// The caller's tenant from the request's `tenant_id`: its own, or any for a platform
    /// admin; another tenant's is NOT_FOUND.
    fn tenant<T>(&self, request: &Request<T>, tenant_id: &str) -> Result<Uuid, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let id = tenant_id_of(tenant_id)?;
        caller.authorize_tenant(id)?;
        Ok(id)
    }

    /// The catalog plan `name`, or INVALID_ARGUMENT naming `field`.
    async fn catalog_plan(&self, field: &'static str, name: &str) -> Result<Plan, ApiError> {
        validate::text(field, name, 40)?;
        let mut conn = self.pool.acquire().await?;
        queries::plan(&mut conn, name)
            .await?
            .ok_or_else(|| ApiError::invalid(field, format!("no plan named {name:?}")))
    }

    /// Defines every plan of the default catalog that is not defined yet (at start).
    pub async fn seed_catalog(&self) -> Result<(), ApiError> {
        let now = self.clock.now();
        for plan in plan::default_catalog() {
            let address = plan::address(&plan.name)?;
            let (existing, _) = self.plans.load(&address).await?;
            if existing.plan.is_some() {
                continue; // the operator's definition wins
            }
            let meta = tenantry_eventstore::CommandMeta {
                command_id: format!("billing-seed-{}", plan.name),
                actor: "system:billing".into(),
                correlation_id: format!("billing-seed-{}", plan.name),
                occurred_at: now,
                traceparent: None,
                fingerprint: None,
            };
            self.plans
                .execute(&address, &PlanCommand::Define(plan), &meta)
                .await?;
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl BillingService for BillingApi {
    async fn define_plan(
        &self,
        request: Request<api::DefinePlanRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let definition = request
            .get_ref()
            .plan
            .clone()
            .ok_or_else(|| ApiError::invalid("plan", "is required"))?;
        let plan =
            Plan::from_definition(convert::definition(definition)).map_err(ApiError::from)?;
        let executed = self
            .plans
            .execute(
                &plan::address(&plan.name).map_err(ApiError::from)?,
                &PlanCommand::Define(plan),
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(response(executed))
    }

    async fn list_plans(
        &self,
        request: Request<api::ListPlansRequest>,
    ) -> Result<Response<api::ListPlansResponse>, Status> {
        TenantContext::from_request(&request)?;
        let req = request.get_ref();
        self.wait(&self.catalog_positions, req.min_position).await?;
        let plans = queries::plans(&self.pool, req.include_retired)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ListPlansResponse {
            plans: plans.iter().map(convert::plan).collect(),
        }))
    }

    async fn get_subscription(
        &self,
        request: Request<api::GetSubscriptionRequest>,
    ) -> Result<Response<api::GetSubscriptionResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        self.wait(&self.positions, req.min_position).await?;
        let subscription = queries::subscription(&self.pool, tenant_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("subscription".into()))?;
        Ok(Response::new(api::GetSubscriptionResponse {
            subscription: Some(convert::subscription(&subscription)),
        }))
    }

    async fn change_plan(
        &self,
        request: Request<api::ChangePlanRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let tenant_id = self.tenant(&request, &request.get_ref().tenant_id)?;
        let caller = TenantContext::from_request(&request)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let to = self.catalog_plan("plan", &request.get_ref().plan).await?;
        let now = self.clock.now();
        let usage: BTreeMap<String, u64> =
            queries::period_usage(&self.pool, tenant_id, month_start(now))
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .collect();
        let executed = self
            .subscriptions
            .execute(
                &subscription::address(tenant_id).map_err(ApiError::from)?,
                &SubscriptionCommand::ChangePlan { to, usage, now },
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(response(executed))
    }

    async fn cancel_subscription(
        &self,
        request: Request<api::CancelSubscriptionRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let tenant_id = self.tenant(&request, &request.get_ref().tenant_id)?;
        let caller = TenantContext::from_request(&request)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let executed = self
            .subscriptions
            .execute(
                &subscription::address(tenant_id).map_err(ApiError::from)?,
                &SubscriptionCommand::Cancel,
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(response(executed))
    }

    async fn get_usage(
        &self,
        request: Request<api::GetUsageRequest>,
    ) -> Result<Response<api::GetUsageResponse>, Status> {
        let tenant_id = self.tenant(&request, &request.get_ref().tenant_id)?;
        let period_start = month_start(self.clock.now());
        let used: BTreeMap<String, u64> =
            queries::period_usage(&self.pool, tenant_id, period_start)
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .collect();
        let subscription = queries::subscription(&self.pool, tenant_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("subscription".into()))?;
        let mut meters: BTreeMap<String, api::MeterUsage> = subscription
            .limits
            .meters
            .iter()
            .map(|m| {
                (
                    m.meter.clone(),
                    api::MeterUsage {
                        meter: m.meter.clone(),
                        used: 0,
                        limit: m.limit,
                        behaviour: m.behaviour,
                    },
                )
            })
            .collect();
        for (meter, n) in used {
            meters
                .entry(meter.clone())
                .or_insert_with(|| api::MeterUsage {
                    meter,
                    ..Default::default()
                })
                .used = n;
        }
        Ok(Response::new(api::GetUsageResponse {
            period_start: Some(time::to_proto(period_start)),
            meters: meters.into_values().collect(),
        }))
    }

    async fn usage_report(
        &self,
        request: Request<api::UsageReportRequest>,
    ) -> Result<Response<api::UsageReportResponse>, Status> {
        let _ = self.tenant(&request, &request.get_ref().tenant_id)?;
        Err(Status::unimplemented("usage reports are not built yet"))
    }

    async fn list_alerts(
        &self,
        request: Request<api::ListAlertsRequest>,
    ) -> Result<Response<api::ListAlertsResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        self.wait(&self.positions, req.min_position).await?;
        let alerts = queries::alerts(&self.pool, tenant_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ListAlertsResponse {
            alerts: alerts
                .into_iter()
                .map(|a| api::Alert {
                    meter: a.meter,
                    percent: u32::try_from(a.percent).unwrap_or(0),
                    used: u64::try_from(a.used).unwrap_or(0),
                    limit: u64::try_from(a.quota).unwrap_or(0),
                    period_start: Some(time::to_proto(a.period_start)),
                    at: Some(time::to_proto(a.at)),
                })
                .collect(),
        }))
    }
}
