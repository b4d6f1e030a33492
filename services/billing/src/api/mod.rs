//! The gRPC API of the billing service.
//!
//! Every handler takes the caller from the [`TenantContext`] (never the body), validates its
//! input (`INVALID_ARGUMENT` names the field), checks the tenant against the caller
//! (`NOT_FOUND` for another tenant's), then runs a command or a read.

pub mod convert;
pub mod http;
pub mod policy;
pub mod webhooks;

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
use crate::payments::service::Payments;
use crate::payments::{CheckoutRequest, Payer, PaymentMethod};
use crate::projection::queries;
use crate::usage::report;

/// Where the payer returns after paying: an absolute http(s) URL. Only the provider uses it
/// (we never fetch it), so any host is allowed.
fn callback_url(value: &str) -> Result<String, ApiError> {
    if value.len() > 2048 {
        return Err(ApiError::invalid(
            "callback_url",
            "is longer than 2048 characters",
        ));
    }
    match reqwest::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(url.to_string())
        }
        _ => Err(ApiError::invalid(
            "callback_url",
            "must be an absolute http or https URL",
        )),
    }
}

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
    pub(crate) payments: Arc<Payments>,
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

    /// Runs `command` on `tenant_id`'s subscription on behalf of the caller of `request`.
    async fn run<T: prost::Message>(
        &self,
        request: &Request<T>,
        tenant_id: Uuid,
        command: SubscriptionCommand,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(request)?;
        let meta = command::meta(request, &caller, &self.clock)?;
        let executed = self
            .subscriptions
            .execute(
                &subscription::address(tenant_id).map_err(ApiError::from)?,
                &command,
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(response(executed))
    }

    /// The catalog plan `name`, or INVALID_ARGUMENT naming `field`.
    async fn catalog_plan(&self, field: &'static str, name: &str) -> Result<Plan, ApiError> {
        validate::text(field, name, 40)?;
        let mut conn = self.pool.acquire().await?;
        queries::plan(&mut conn, name)
            .await?
            .ok_or_else(|| ApiError::invalid(field, format!("no plan named {name:?}")))
    }

    /// The service's pool (its own role), for tests that check what a scope can see.
    pub fn pool_for_tests(&self) -> PgPool {
        self.pool.clone()
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
        let to = self.catalog_plan("plan", &request.get_ref().plan).await?;
        let now = self.clock.now();
        let usage: BTreeMap<String, u64> = queries::current_usage(&self.pool, tenant_id, now)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .collect();
        self.run(
            &request,
            tenant_id,
            SubscriptionCommand::ChangePlan { to, usage, now },
        )
        .await
    }

    async fn set_billing_email(
        &self,
        request: Request<api::SetBillingEmailRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        validate::email("billing_email", &req.billing_email)?;
        let command = SubscriptionCommand::SetBillingEmail(req.billing_email.clone());
        self.run(&request, tenant_id, command).await
    }

    async fn cancel_subscription(
        &self,
        request: Request<api::CancelSubscriptionRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let tenant_id = self.tenant(&request, &request.get_ref().tenant_id)?;
        self.run(&request, tenant_id, SubscriptionCommand::Cancel)
            .await
    }

    async fn get_usage(
        &self,
        request: Request<api::GetUsageRequest>,
    ) -> Result<Response<api::GetUsageResponse>, Status> {
        let tenant_id = self.tenant(&request, &request.get_ref().tenant_id)?;
        let now = self.clock.now();
        let period_start = month_start(now);
        let used: BTreeMap<String, u64> = queries::current_usage(&self.pool, tenant_id, now)
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
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        let format = validate::known_enum::<api::ReportFormat>("format", req.format)?;
        let (from, to) =
            report::parse_period(&req.period, self.clock.now()).map_err(ApiError::from)?;
        let rows: Vec<report::UsageRow> = queries::hourly_usage(&self.pool, tenant_id, from, to)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|(hour, meter, quantity)| report::UsageRow {
                hour,
                meter,
                quantity,
            })
            .collect();
        let id = tenant_id.to_string();
        let text = match format {
            api::ReportFormat::Csv => report::render_csv(&id, &rows),
            api::ReportFormat::Json => report::render_json(&id, from, to, &rows),
            api::ReportFormat::Unspecified => String::new(),
        };
        Ok(Response::new(api::UsageReportResponse {
            from: Some(time::to_proto(from)),
            to: Some(time::to_proto(to)),
            rows: rows
                .iter()
                .map(|r| api::UsageRow {
                    hour: Some(time::to_proto(r.hour)),
                    meter: r.meter.clone(),
                    quantity: r.quantity,
                })
                .collect(),
            text,
        }))
    }

    async fn checkout(
        &self,
        request: Request<api::CheckoutRequest>,
    ) -> Result<Response<api::CheckoutResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        let plan = self.catalog_plan("plan", &req.plan).await?;
        if plan.retired {
            return Err(ApiError::invalid("plan", format!("{} is retired", plan.name)).into());
        }
        if plan.price_minor == 0 {
            return Err(ApiError::invalid(
                "plan",
                format!("{} is free: change to it with ChangePlan", plan.name),
            )
            .into());
        }
        let method = PaymentMethod::parse(&req.payment_method).ok_or_else(|| {
            ApiError::invalid("payment_method", "must be credit_card, pix or boleto")
        })?;
        validate::email("billing_email", &req.billing_email)?;
        let email = req.billing_email.clone();
        let callback = callback_url(&req.callback_url)?;
        let payer = (!req.payer_tax_id.is_empty() || !req.payer_name.is_empty()).then(|| Payer {
            name: req.payer_name.clone(),
            tax_id: req.payer_tax_id.clone(),
        });
        let sub = queries::subscription(&self.pool, tenant_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("subscription".into()))?;
        if sub.status == crate::domain::Status::Canceled {
            return Err(ApiError::FailedPrecondition("the subscription is canceled".into()).into());
        }
        let request = CheckoutRequest {
            tenant_id,
            plan: plan.name.clone(),
            plan_display_name: plan.display_name.clone(),
            amount_minor: plan.price_minor,
            currency: plan.currency.code().into(),
            interval: plan.interval.as_str(),
            method,
            billing_email: email,
            callback_url: callback,
            customer_id: String::new(),
            payer,
        };
        let (provider, c) = self.payments.checkout(&sub, request).await?;
        Ok(Response::new(api::CheckoutResponse {
            provider: provider.into(),
            reference: c.reference,
            url: c.url,
            pix_qr_code: c.pix_qr_code,
            pix_copy_paste: c.pix_copy_paste,
            boleto_barcode: c.boleto_barcode,
            expires_at: c.expires_at.map(time::to_proto),
        }))
    }

    async fn list_invoices(
        &self,
        request: Request<api::ListInvoicesRequest>,
    ) -> Result<Response<api::ListInvoicesResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        self.wait(&self.positions, req.min_position).await?;
        let invoices = queries::invoices(&self.pool, tenant_id)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ListInvoicesResponse { invoices }))
    }

    async fn get_invoice(
        &self,
        request: Request<api::GetInvoiceRequest>,
    ) -> Result<Response<api::GetInvoiceResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        self.wait(&self.positions, req.min_position).await?;
        let invoice = queries::invoice(&self.pool, tenant_id, req.number)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("invoice {}", req.number)))?;
        Ok(Response::new(api::GetInvoiceResponse {
            invoice: Some(invoice),
        }))
    }

    async fn void_invoice(
        &self,
        request: Request<api::VoidInvoiceRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let tenant_id = self.tenant(&request, &req.tenant_id)?;
        validate::text("reason", &req.reason, 500)?;
        let command = SubscriptionCommand::VoidInvoice {
            number: req.number,
            reason: req.reason.clone(),
        };
        self.run(&request, tenant_id, command).await
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
