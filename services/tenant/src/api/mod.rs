//! The gRPC API of the tenant service.
//!
//! Every handler: takes the caller from the [`TenantContext`] (never the body), validates its
//! input (`INVALID_ARGUMENT` names the field), checks the tenant against the caller
//! (`NOT_FOUND` for another tenant's), then runs a command or a read.

pub mod convert;
pub mod domains;
pub mod policy;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tenantry_eventstore::{AggregateAddress, CommandMeta, Executed, Positions, Repository};
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::{ApiError, Clock, TenantContext, command, validate};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::tenant::v1::{self as api, tenant_service_server::TenantService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::tenant::{MAX_DOMAINS, validate_domain, validate_flag, validate_slug};
use crate::domain::{
    DomainError, Reservation, ReservationCommand, Settings, Tenant, TenantCommand, TenantKind,
    reservation,
};
use crate::projection::queries;
use domains::DomainProver;

const MAX_NAME: usize = 200;
const MAX_REASON: usize = 500;
const MAX_PAGE: u32 = 500;

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct TenantApi {
    pub(crate) tenants: Repository<Tenant>,
    pub(crate) reservations: Repository<Reservation>,
    pub(crate) pool: PgPool,
    pub(crate) positions: Positions,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) prover: Arc<dyn DomainProver>,
    /// Tenants answer on `<slug>.<base domain>`: no custom domain may be under it.
    pub(crate) base_domain: String,
    /// Each tenant's plan limits from billing: its custom-domain cap.
    pub(crate) plans: Arc<PlanDirectory>,
    /// Longest a query waits for `min_position`.
    pub(crate) read_wait: Duration,
}

/// A tenant's own aggregate: in its tenant, with its id.
pub fn tenant_address(id: Uuid) -> Result<AggregateAddress, ApiError> {
    Ok(AggregateAddress::of::<Tenant>(
        id.to_string(),
        id.to_string(),
    )?)
}

impl TenantApi {
    /// Runs `command` on `tenant_id` on behalf of the caller of `request`.
    async fn run<T: prost::Message>(
        &self,
        request: &Request<T>,
        tenant_id: Uuid,
        command: TenantCommand,
    ) -> Result<Executed<Tenant>, ApiError> {
        let caller = TenantContext::from_request(request)?;
        caller.authorize_tenant(tenant_id)?;
        let meta = command::meta(request, &caller, &self.clock)?;
        Ok(self
            .tenants
            .execute(&tenant_address(tenant_id)?, &command, &meta)
            .await?)
    }

    async fn wait(&self, min_position: u64) -> Result<(), ApiError> {
        if min_position > 0 {
            self.positions
                .wait_for(min_position, self.read_wait)
                .await?;
        }
        Ok(())
    }

    async fn claim(
        &self,
        kind: &'static str,
        name: &str,
        tenant_id: Uuid,
        meta: &CommandMeta,
    ) -> Result<Reservation, ApiError> {
        let meta = CommandMeta {
            command_id: format!("{}:{kind}", meta.command_id),
            ..meta.clone()
        };
        let command = ReservationCommand::Claim {
            kind,
            name: name.to_owned(),
            tenant_id,
            command_id: meta.command_id.clone(),
        };
        let executed = self
            .reservations
            .execute_new(&reservation::address(kind, name)?, &command, &meta)
            .await?;
        Ok(executed.state)
    }

    /// Gives `name` back if `tenant_id` holds it (a no-op otherwise).
    async fn release(
        &self,
        kind: &'static str,
        name: &str,
        tenant_id: Uuid,
        meta: &CommandMeta,
    ) -> Result<(), ApiError> {
        let meta = CommandMeta {
            command_id: format!("{}:release", meta.command_id),
            ..meta.clone()
        };
        let release = ReservationCommand::Release {
            kind,
            name: name.to_owned(),
            tenant_id,
        };
        self.reservations
            .execute(&reservation::address(kind, name)?, &release, &meta)
            .await?;
        Ok(())
    }

    /// Expires every trial whose end has passed. Idempotent: the command id is derived from
    /// the tenant, so replicas sweeping at once write one event.
    pub async fn expire_due_trials(&self) -> Result<usize, ApiError> {
        let now = self.clock.now();
        let due = queries::due_trials(&self.pool, now, 500).await?;
        let mut expired = 0;
        for tenant_id in due {
            let meta = CommandMeta {
                command_id: format!("trial-expiry-{tenant_id}"),
                actor: "system:trial-expiry".into(),
                correlation_id: format!("trial-expiry-{tenant_id}"),
                occurred_at: now,
                traceparent: None,
                fingerprint: None,
            };
            let executed = self
                .tenants
                .execute(
                    &tenant_address(tenant_id)?,
                    &TenantCommand::ExpireTrial { now },
                    &meta,
                )
                .await?;
            if executed.state.trial_expired {
                expired += 1;
            }
        }
        Ok(expired)
    }
}

fn tenant_id_of(value: &str) -> Result<Uuid, ApiError> {
    validate::uuid("tenant_id", value)
}

fn response(executed: Executed<Tenant>) -> Response<api::CommandResponse> {
    Response::new(api::CommandResponse {
        position: executed.position,
    })
}

#[tonic::async_trait]
impl TenantService for TenantApi {
    async fn create_tenant(
        &self,
        request: Request<api::CreateTenantRequest>,
    ) -> Result<Response<api::CreateTenantResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let req = request.get_ref();
        validate::text("name", &req.name, MAX_NAME)?;
        validate_slug(&req.slug).map_err(ApiError::from)?;
        let kind = validate::known_enum::<pb::TenantType>("type", req.r#type)?;
        let kind =
            TenantKind::from_proto(kind).ok_or_else(|| ApiError::invalid("type", "is required"))?;
        let settings = Settings::from_request(req.settings.as_ref()).map_err(ApiError::from)?;

        // The slug first: whoever claims it owns it; a retry of this command finds its own
        // claim and the tenant id it chose.
        let reservation = self
            .claim("slug", &req.slug, Uuid::now_v7(), &meta)
            .await
            .map_err(|e| match e {
                ApiError::AlreadyExists(_) => {
                    ApiError::AlreadyExists(format!("slug {} is taken", req.slug))
                }
                other => other,
            })?;
        let tenant_id = reservation
            .holder
            .ok_or_else(|| ApiError::Internal("slug claim without holder".into()))?;
        let command = TenantCommand::Create {
            id: tenant_id,
            name: req.name.trim().to_owned(),
            slug: req.slug.clone(),
            kind,
            settings,
            now: meta.occurred_at,
        };
        // A fresh id (or, on a retry, the id of this command's own claim): no read first.
        let executed = self
            .tenants
            .execute_new(&tenant_address(tenant_id)?, &command, &meta)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::CreateTenantResponse {
            tenant: Some(convert::tenant(&executed.state)),
            position: executed.position,
        }))
    }

    async fn get_tenant(
        &self,
        request: Request<api::GetTenantRequest>,
    ) -> Result<Response<api::GetTenantResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        caller.authorize_tenant(id)?;
        self.wait(req.min_position).await?;
        let tenant = queries::get(&self.pool, caller.scope()?, id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("tenant {id}")))?;
        Ok(Response::new(api::GetTenantResponse {
            tenant: Some(convert::tenant(&tenant)),
        }))
    }

    async fn list_tenants(
        &self,
        request: Request<api::ListTenantsRequest>,
    ) -> Result<Response<api::ListTenantsResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let req = request.get_ref();
        let limit = match req.page_size {
            0 => 50,
            n if n > MAX_PAGE => {
                return Err(
                    ApiError::invalid("page_size", format!("must be at most {MAX_PAGE}")).into(),
                );
            }
            n => n,
        };
        let after = match req.page_token.as_str() {
            "" => None,
            token => Some(validate::uuid("page_token", token)?),
        };
        self.wait(req.min_position).await?;
        let tenants = queries::list(&self.pool, caller.scope()?, after, limit)
            .await
            .map_err(ApiError::from)?;
        let next_page_token = match tenants.last() {
            Some(last) if tenants.len() == limit as usize => {
                last.id.map(|id| id.to_string()).unwrap_or_default()
            }
            _ => String::new(),
        };
        Ok(Response::new(api::ListTenantsResponse {
            tenants: tenants.iter().map(convert::tenant).collect(),
            next_page_token,
        }))
    }

    async fn update_settings(
        &self,
        request: Request<api::UpdateSettingsRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        let settings = req
            .settings
            .as_ref()
            .ok_or_else(|| ApiError::invalid("settings", "is required"))?;
        let settings = Settings::from_request(Some(settings)).map_err(ApiError::from)?;
        Ok(response(
            self.run(&request, id, TenantCommand::UpdateSettings(settings))
                .await?,
        ))
    }

    async fn set_feature_flags(
        &self,
        request: Request<api::SetFeatureFlagsRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        if req.set.len() + req.unset.len() > crate::domain::tenant::MAX_FLAGS {
            return Err(ApiError::invalid("set", "too many flags in one request").into());
        }
        req.set
            .keys()
            .try_for_each(|k| validate_flag("set", k))
            .map_err(ApiError::from)?;
        req.unset
            .iter()
            .try_for_each(|k| validate_flag("unset", k))
            .map_err(ApiError::from)?;
        let set: BTreeMap<String, bool> = req.set.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let command = TenantCommand::SetFeatureFlags {
            set,
            unset: req.unset.clone(),
        };
        Ok(response(self.run(&request, id, command).await?))
    }

    async fn add_domain(
        &self,
        request: Request<api::AddDomainRequest>,
    ) -> Result<Response<api::AddDomainResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        validate_domain(&req.domain).map_err(ApiError::from)?;
        domains::check_not_platform(&self.base_domain, &req.domain)?;
        caller.authorize_tenant(id)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        // The tenant's own checks (it exists, is open, is under its domain limit) come before
        // the platform-wide name is reserved: a tenant that may not add the domain must not
        // hold its name either.
        let (tenant, _) = self
            .tenants
            .load(&tenant_address(id)?)
            .await
            .map_err(ApiError::from)?;
        if !tenant.exists() {
            return Err(ApiError::from(DomainError::NotFound("tenant".into())).into());
        }
        // The tenant's plan sets the cap; a plan that leaves it at 0 (or no plan yet) gets
        // the service's default.
        let max_domains = self.plans.cap(id, |p| p.custom_domains, MAX_DOMAINS);
        let already = tenant
            .can_add_domain(&req.domain, max_domains)
            .map_err(ApiError::from)?;
        self.claim("domain", &req.domain, id, &meta)
            .await
            .map_err(|e| match e {
                ApiError::AlreadyExists(_) => ApiError::AlreadyExists(format!(
                    "domain {} is in use by another tenant",
                    req.domain
                )),
                other => other,
            })?;
        let token = Uuid::new_v4().simple().to_string();
        let command = TenantCommand::AddDomain {
            domain: req.domain.clone(),
            verification_token: token,
            max_domains,
        };
        let executed = match self
            .tenants
            .execute(&tenant_address(id)?, &command, &meta)
            .await
        {
            Ok(executed) => executed,
            Err(e) => {
                // The checks passed a moment ago but the command lost (a concurrent add
                // filled the limit, the log refused): the name goes back.
                if !already
                    && let Err(release) = self.release("domain", &req.domain, id, &meta).await
                {
                    tracing::warn!(domain = %req.domain, error = %release, "domain reservation not released after a failed add");
                }
                return Err(ApiError::from(e).into());
            }
        };
        let verification_token = executed
            .state
            .domain(&req.domain)
            .map(|d| d.verification_token.clone())
            .unwrap_or_default();
        Ok(Response::new(api::AddDomainResponse {
            verification_token,
            position: executed.position,
        }))
    }

    async fn verify_domain(
        &self,
        request: Request<api::VerifyDomainRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        validate_domain(&req.domain).map_err(ApiError::from)?;
        caller.authorize_tenant(id)?;
        let (tenant, _) = self
            .tenants
            .load(&tenant_address(id)?)
            .await
            .map_err(ApiError::from)?;
        let proved = match tenant.domain(&req.domain) {
            Some(d) if !d.verified => {
                self.prover
                    .proves(&req.domain, &d.verification_token)
                    .await?
            }
            _ => false, // unknown or already verified: decide answers
        };
        Ok(response(
            self.run(
                &request,
                id,
                TenantCommand::VerifyDomain {
                    domain: req.domain.clone(),
                    proved,
                },
            )
            .await?,
        ))
    }

    async fn remove_domain(
        &self,
        request: Request<api::RemoveDomainRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        validate_domain(&req.domain).map_err(ApiError::from)?;
        caller.authorize_tenant(id)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let remove = TenantCommand::RemoveDomain {
            domain: req.domain.clone(),
        };
        let executed = self
            .tenants
            .execute(&tenant_address(id)?, &remove, &meta)
            .await
            .map_err(ApiError::from)?;
        // Then free the name for other tenants. If this fails the name stays reserved to
        // this tenant; adding the domain back and removing it again releases it.
        self.release("domain", &req.domain, id, &meta).await?;
        Ok(response(executed))
    }

    async fn change_tenant_type(
        &self,
        request: Request<api::ChangeTenantTypeRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        let kind = validate::known_enum::<pb::TenantType>("type", req.r#type)?;
        let to =
            TenantKind::from_proto(kind).ok_or_else(|| ApiError::invalid("type", "is required"))?;
        Ok(response(
            self.run(&request, id, TenantCommand::ChangeType { to })
                .await?,
        ))
    }

    async fn suspend_tenant(
        &self,
        request: Request<api::SuspendTenantRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        validate::text("reason", &req.reason, MAX_REASON)?;
        Ok(response(
            self.run(
                &request,
                id,
                TenantCommand::Suspend {
                    reason: req.reason.clone(),
                },
            )
            .await?,
        ))
    }

    async fn reactivate_tenant(
        &self,
        request: Request<api::ReactivateTenantRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let id = tenant_id_of(&request.get_ref().tenant_id)?;
        Ok(response(
            self.run(&request, id, TenantCommand::Reactivate).await?,
        ))
    }

    async fn mark_for_decommission(
        &self,
        request: Request<api::MarkForDecommissionRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let id = tenant_id_of(&req.tenant_id)?;
        validate::optional_text("reason", &req.reason, MAX_REASON)?;
        Ok(response(
            self.run(
                &request,
                id,
                TenantCommand::MarkForDecommission {
                    reason: req.reason.clone(),
                },
            )
            .await?,
        ))
    }
}
