//! The gRPC API of the orchestration service.
//!
//! Every handler takes the caller from the [`TenantContext`] (never the body), validates its
//! input (`INVALID_ARGUMENT` names the field), checks the tenant against the caller
//! (`NOT_FOUND` for another tenant's), then runs a command or a read. A deployment lives under
//! its tenant's subject, so another tenant's deployment id is simply not found there.

pub mod convert;
pub mod policy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tenantry_eventstore::{Executed, Repository};
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::seal::Keystore;
use tenantry_kit::{ApiError, Clock, TenantContext, command, validate};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::orchestration::v1::{
    self as api, orchestration_service_server::OrchestrationService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::directory::Directory;
use crate::domain::{Deployment, DeploymentCommand, deployment, spec};
use crate::runtime::{Runtime, RuntimeError};
use crate::secrets;

const MAX_REASON: usize = 500;

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct OrchestrationApi {
    pub(crate) deployments: Repository<Deployment>,
    pub(crate) directory: Arc<Directory>,
    /// Each tenant's plan limits from billing: its dedicated instances.
    pub(crate) plans: Arc<PlanDirectory>,
    /// The runtimes this installation has (a spec naming another is refused).
    pub(crate) runtimes: Vec<Arc<dyn Runtime>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Seals secret environment variables.
    pub(crate) keystore: Keystore,
    /// Longest a query waits for `min_position`.
    pub(crate) read_wait: Duration,
    /// Held from counting a tenant's deployments to the directory having applied the new
    /// one, so two provisions at once in this replica cannot both pass the plan's limit.
    pub(crate) provisioning: Arc<tokio::sync::Mutex<()>>,
}

fn response<A>(executed: Executed<A>) -> Response<api::CommandResponse> {
    Response::new(api::CommandResponse {
        position: executed.position,
    })
}

impl OrchestrationApi {
    /// The caller's tenant from the request's `tenant_id`: its own, or any for a platform
    /// admin; another tenant's is NOT_FOUND.
    fn tenant<T>(&self, request: &Request<T>, tenant_id: &str) -> Result<Uuid, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let id = validate::uuid("tenant_id", tenant_id)?;
        caller.authorize_tenant(id)?;
        Ok(id)
    }

    async fn wait(&self, min_position: u64) -> Result<(), ApiError> {
        if min_position > 0 && !self.directory.applied(min_position, self.read_wait).await {
            return Err(ApiError::DeadlineExceeded(format!(
                "the deployments have not reached position {min_position} yet"
            )));
        }
        Ok(())
    }

    /// A spec as it will be stored: valid, and runnable by one of this installation's
    /// runtimes.
    fn check_spec(&self, spec: Option<&pb::DeploymentSpec>) -> Result<(), ApiError> {
        let spec = spec::normalized(
            spec.cloned()
                .ok_or_else(|| ApiError::invalid("spec", "is required"))?,
        );
        spec::validate(&spec)?;
        let runtime = self
            .runtimes
            .iter()
            .find(|r| r.name() == spec.runtime)
            .ok_or_else(|| {
                ApiError::invalid(
                    "spec.runtime",
                    format!("{} is not enabled on this installation", spec.runtime),
                )
            })?;
        runtime.accepts(&spec).map_err(|e| match e {
            RuntimeError::UnknownImage(_) => ApiError::invalid("spec.image", e.to_string()),
            other => ApiError::Internal(other.to_string()),
        })
    }

    /// Runs `command` on deployment `id` of `tenant_id` for the caller of `request`.
    async fn run<T: prost::Message>(
        &self,
        request: &Request<T>,
        tenant_id: Uuid,
        id: Uuid,
        command: DeploymentCommand,
    ) -> Result<Executed<Deployment>, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let meta = command::meta(request, &caller, &self.clock)?;
        Ok(self
            .deployments
            .execute(&deployment::address(tenant_id, id)?, &command, &meta)
            .await?)
    }

    async fn command<T: prost::Message>(
        &self,
        request: &Request<T>,
        tenant_id: &str,
        deployment_id: &str,
        command: DeploymentCommand,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let tenant = self.tenant(request, tenant_id)?;
        let id = validate::uuid("deployment_id", deployment_id)?;
        Ok(response(self.run(request, tenant, id, command).await?))
    }
}

#[tonic::async_trait]
impl OrchestrationService for OrchestrationApi {
    async fn provision(
        &self,
        request: Request<api::ProvisionRequest>,
    ) -> Result<Response<api::ProvisionResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        let id = match req.deployment_id.as_str() {
            "" => Uuid::now_v7(),
            given => validate::uuid("deployment_id", given)?,
        };
        self.check_spec(req.spec.as_ref())?;
        let mut spec = req.spec.clone().unwrap_or_default();
        spec::secrets(&req.secrets, &spec, false).map_err(ApiError::from)?;
        spec.secret_env =
            secrets::apply(&self.keystore, tenant, id, &req.secrets, HashMap::new()).await?;
        let counting = self.provisioning.lock().await;
        let command = DeploymentCommand::Provision {
            deployment_id: id,
            spec,
            dedicated_instances: self
                .plans
                .limits(tenant)
                .map_or(0, |p| p.dedicated_instances),
            existing: self.directory.live_count(tenant),
        };
        let executed = self.run(&request, tenant, id, command).await?;
        // Counted by the next provision only once the directory has it.
        self.wait(executed.position).await?;
        drop(counting);
        Ok(Response::new(api::ProvisionResponse {
            deployment_id: id.to_string(),
            position: executed.position,
        }))
    }

    async fn scale(
        &self,
        request: Request<api::ScaleRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let command = DeploymentCommand::Scale {
            replicas: req.replicas,
        };
        self.command(&request, &req.tenant_id, &req.deployment_id, command)
            .await
    }

    async fn set_autoscaling(
        &self,
        request: Request<api::SetAutoscalingRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let autoscaling = req
            .autoscaling
            .ok_or_else(|| ApiError::invalid("autoscaling", "is required"))?;
        let command = DeploymentCommand::SetAutoscaling(autoscaling);
        self.command(&request, &req.tenant_id, &req.deployment_id, command)
            .await
    }

    async fn update(
        &self,
        request: Request<api::UpdateRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        let id = validate::uuid("deployment_id", &req.deployment_id)?;
        self.check_spec(req.spec.as_ref())?;
        let mut spec = req.spec.clone().unwrap_or_default();
        spec::secrets(&req.secrets, &spec, true).map_err(ApiError::from)?;
        // The current revision's secrets are kept unless the request changes them: read from
        // the log itself, not the directory, so an update right after another builds on it.
        let address = deployment::address(tenant, id).map_err(ApiError::from)?;
        let (current, _) = self
            .deployments
            .load(&address)
            .await
            .map_err(ApiError::from)?;
        spec.secret_env = secrets::apply(
            &self.keystore,
            tenant,
            id,
            &req.secrets,
            current.spec.secret_env.clone(),
        )
        .await?;
        let command = DeploymentCommand::Update(spec);
        Ok(response(self.run(&request, tenant, id, command).await?))
    }

    async fn drain(
        &self,
        request: Request<api::DrainRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        validate::optional_text("reason", &req.reason, MAX_REASON)?;
        let command = DeploymentCommand::Drain {
            reason: req.reason.clone(),
        };
        self.command(&request, &req.tenant_id, &req.deployment_id, command)
            .await
    }

    async fn resume(
        &self,
        request: Request<api::ResumeRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        self.command(
            &request,
            &req.tenant_id,
            &req.deployment_id,
            DeploymentCommand::Resume,
        )
        .await
    }

    async fn decommission(
        &self,
        request: Request<api::DecommissionRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        validate::optional_text("reason", &req.reason, MAX_REASON)?;
        let command = DeploymentCommand::Decommission {
            reason: req.reason.clone(),
        };
        self.command(&request, &req.tenant_id, &req.deployment_id, command)
            .await
    }

    async fn get_deployment(
        &self,
        request: Request<api::GetDeploymentRequest>,
    ) -> Result<Response<api::GetDeploymentResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        let id = validate::uuid("deployment_id", &req.deployment_id)?;
        self.wait(req.min_position).await?;
        let found = self
            .directory
            .get(tenant, id)
            .filter(Deployment::exists)
            .ok_or_else(|| ApiError::NotFound("deployment".into()))?;
        Ok(Response::new(api::GetDeploymentResponse {
            deployment: Some(convert::deployment(tenant, id, &found)),
        }))
    }

    async fn list_deployments(
        &self,
        request: Request<api::ListDeploymentsRequest>,
    ) -> Result<Response<api::ListDeploymentsResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        self.wait(req.min_position).await?;
        let deployments = self
            .directory
            .of_tenant(tenant)
            .iter()
            .filter(|(_, d)| d.exists())
            .map(|(id, d)| convert::deployment(tenant, *id, d))
            .collect();
        Ok(Response::new(api::ListDeploymentsResponse { deployments }))
    }
}
