//! The gRPC API of the sync service.
//!
//! Every handler takes the caller from the [`TenantContext`] (never the body), validates its
//! input (`INVALID_ARGUMENT` names the field) before anything is sealed or appended, checks
//! the tenant against the caller (`NOT_FOUND` for another tenant's), then runs a command or a
//! read. Credentials are sealed on arrival and never answered.

pub mod convert;
pub mod http;
pub mod policy;
pub mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::PgPool;
use tenantry_eventstore::{EventStore, Positions, Repository};
use tenantry_kit::{ApiError, Clock, TenantContext, command, validate};
use tenantry_proto::events::v1::integration_config::Source;
use tenantry_proto::sync::v1::{self as api, sync_service_server::SyncService};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::connectors::ConnectorError;
use crate::connectors::http_json::HttpJson;
use crate::domain::integration::{self, NewIntegration};
use crate::domain::source::{validate_config, validate_credentials};
use crate::domain::{Integration, IntegrationCommand, Schedule, SourceKind};
use crate::projection::queries;
use crate::runs::{Job, Mode, Runner};
use tenantry_kit::seal::{Keystore, SealError};

/// Everything the handlers need. Cheap to clone.
#[derive(Clone)]
pub struct SyncApi {
    pub(crate) integrations: Repository<Integration>,
    pub(crate) pool: PgPool,
    pub(crate) keystore: Keystore,
    pub(crate) store: EventStore,
    pub(crate) runner: Arc<Runner>,
    pub(crate) positions: Positions,
    pub(crate) clock: Arc<dyn Clock>,
    /// Longest a query waits for `min_position`.
    pub(crate) read_wait: Duration,
}

fn sealing(e: SealError) -> ApiError {
    match e {
        SealError::Shredded => {
            ApiError::FailedPrecondition("the tenant's keys were shredded".into())
        }
        // The details (which key, which row) are logged, not answered.
        other => {
            tracing::error!(error = %other, "sealing credentials failed");
            ApiError::Unavailable("the keystore is not available".into())
        }
    }
}

/// What a validation call's outcome tells the tenant.
fn refusal(outcome: Result<(), ConnectorError>) -> Option<String> {
    match outcome {
        Ok(()) => None,
        Err(ConnectorError::Status(code @ (401 | 403))) => {
            Some(format!("the source refused the credentials (HTTP {code})"))
        }
        Err(e) => Some(e.to_string()),
    }
}

/// The validated parts of a create or validate request.
struct Checked {
    kind: SourceKind,
    config: tenantry_proto::events::v1::IntegrationConfig,
    credentials: BTreeMap<String, String>,
    names: Vec<String>,
}

fn check(
    kind: &str,
    config: Option<&tenantry_proto::events::v1::IntegrationConfig>,
    credentials: &std::collections::HashMap<String, String>,
) -> Result<Checked, ApiError> {
    let kind = SourceKind::parse("type", kind)?;
    let config = validate_config(kind, config)?;
    let credentials: BTreeMap<String, String> = credentials
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let names = validate_credentials(kind, &credentials)?;
    Ok(Checked {
        kind,
        config,
        credentials,
        names,
    })
}

impl SyncApi {
    async fn wait(&self, min_position: u64) -> Result<(), ApiError> {
        if min_position > 0 {
            self.positions
                .wait_for(min_position, self.read_wait)
                .await?;
        }
        Ok(())
    }

    /// The caller's tenant from the request's `tenant_id`: its own, or any for a platform
    /// admin; another tenant's is NOT_FOUND.
    fn tenant<T>(&self, request: &Request<T>, tenant_id: &str) -> Result<Uuid, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let id = validate::uuid("tenant_id", tenant_id)?;
        caller.authorize_tenant(id)?;
        Ok(id)
    }

    /// The integration as the log has it (NOT_FOUND when the tenant has no such one).
    async fn load(&self, tenant: Uuid, id: Uuid) -> Result<Integration, ApiError> {
        let (state, _) = self
            .integrations
            .load(&integration::address(tenant, id)?)
            .await?;
        if state.exists() {
            Ok(state)
        } else {
            Err(ApiError::NotFound("integration".into()))
        }
    }

    async fn execute<T: prost::Message>(
        &self,
        request: &Request<T>,
        tenant: Uuid,
        id: Uuid,
        command: IntegrationCommand,
    ) -> Result<u64, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let meta = command::meta(request, &caller, &self.clock)?;
        let executed = self
            .integrations
            .execute(&integration::address(tenant, id)?, &command, &meta)
            .await?;
        Ok(executed.position)
    }
}

#[tonic::async_trait]
impl SyncService for SyncApi {
    async fn create_integration(
        &self,
        request: Request<api::CreateIntegrationRequest>,
    ) -> Result<Response<api::CreateIntegrationResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        // Everything checked before anything is sealed or appended.
        let name = req.name.trim().to_owned();
        validate::text("name", &name, 100)?;
        let checked = check(&req.r#type, req.config.as_ref(), &req.credentials)?;
        let schedule = Schedule::from_proto(req.schedule.as_ref()).map_err(ApiError::from)?;

        let id = Uuid::now_v7();
        let plain = serde_json::to_vec(&checked.credentials)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let credentials = self
            .keystore
            .seal(tenant, id, &plain)
            .await
            .map_err(sealing)?;
        let webhook_secret = URL_SAFE_NO_PAD.encode(tenantry_kit::seal::aead::random::<32>());
        let sealed_webhook = self
            .keystore
            .seal(tenant, id, webhook_secret.as_bytes())
            .await
            .map_err(sealing)?;
        let position = self
            .execute(
                &request,
                tenant,
                id,
                IntegrationCommand::Create(Box::new(NewIntegration {
                    name,
                    kind: checked.kind,
                    config: checked.config,
                    schedule,
                    credentials: credentials.into(),
                    credential_names: checked.names,
                    webhook_secret: sealed_webhook.into(),
                })),
            )
            .await?;
        Ok(Response::new(api::CreateIntegrationResponse {
            integration_id: id.to_string(),
            position,
            webhook_secret,
        }))
    }

    async fn list_integrations(
        &self,
        request: Request<api::ListIntegrationsRequest>,
    ) -> Result<Response<api::ListIntegrationsResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        self.wait(req.min_position).await?;
        let rows = queries::integrations(&self.pool, tenant)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ListIntegrationsResponse {
            integrations: rows
                .iter()
                .map(|s| convert::integration(tenant, s))
                .collect(),
        }))
    }

    async fn get_integration(
        &self,
        request: Request<api::GetIntegrationRequest>,
    ) -> Result<Response<api::Integration>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        let id = validate::uuid("integration_id", &req.integration_id)?;
        self.wait(req.min_position).await?;
        let state = queries::integration(&self.pool, tenant, id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound("integration".into()))?;
        Ok(Response::new(convert::integration(tenant, &state)))
    }

    async fn validate_credentials(
        &self,
        request: Request<api::ValidateCredentialsRequest>,
    ) -> Result<Response<api::ValidateCredentialsResponse>, Status> {
        let req = request.get_ref();
        if req.tenant_id.is_empty() {
            // The caller's own tenant: nothing is stored, so only its role matters.
            TenantContext::from_request(&request)?.tenant()?;
        } else {
            self.tenant(&request, &req.tenant_id)?;
        }
        let checked = check(&req.r#type, req.config.as_ref(), &req.credentials)?;
        let problem = match &checked.config.source {
            Some(Source::HttpJson(config)) => {
                let source = HttpJson {
                    http: &self.runner.http,
                    pacing: self.runner.pacing,
                    config,
                    auth_value: checked.credentials.get("auth_value").map(String::as_str),
                };
                match source.page(1, None).await {
                    Ok(_) => None,
                    Err(ConnectorError::Status(code @ (401 | 403))) => {
                        Some(format!("the source refused the credentials (HTTP {code})"))
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
            Some(Source::Vtex(config)) => {
                let source = self.runner.vtex(config, &checked.credentials);
                refusal(source.page(1, 1, None, self.clock.now()).await.map(|_| ()))
            }
            // A refresh would spend the single-use refresh token, which nothing would keep
            // here: only an access token given is checked.
            Some(Source::Mercadolibre(config)) => match checked.credentials.get("access_token") {
                Some(token) => refusal(self.runner.mercadolibre(config).me(token).await),
                None => Some(
                    "give an access_token to validate: MercadoLibre's refresh tokens are \
                     single-use, so validation does not spend one"
                        .into(),
                ),
            },
            // Google's refresh tokens are not rotated: validation may use one.
            Some(Source::GoogleAds(config)) => {
                let source = self.runner.google_ads(config, &checked.credentials);
                let outcome = match source.access_token().await {
                    Ok(token) => source.accessible_customers(&token).await,
                    Err(e) => Err(e),
                };
                refusal(outcome)
            }
            Some(Source::FacebookAds(config)) => {
                let token = checked.credentials.get("access_token").map(String::as_str);
                let source = self.runner.facebook_ads(config, token.unwrap_or_default());
                let today = self.clock.now().date_naive();
                refusal(source.page((today, today), 1, None).await.map(|_| ()))
            }
            _ => Some(ConnectorError::NotBuilt(checked.kind.as_str()).to_string()),
        };
        Ok(Response::new(api::ValidateCredentialsResponse {
            valid: problem.is_none(),
            problems: problem.into_iter().collect(),
        }))
    }

    async fn set_integration_enabled(
        &self,
        request: Request<api::SetIntegrationEnabledRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        let id = validate::uuid("integration_id", &req.integration_id)?;
        validate::optional_text("reason", &req.reason, 500)?;
        let command = if req.enabled {
            IntegrationCommand::Enable
        } else {
            IntegrationCommand::Disable {
                reason: req.reason.clone(),
            }
        };
        let position = self.execute(&request, tenant, id, command).await?;
        Ok(Response::new(api::CommandResponse { position }))
    }

    async fn trigger_sync(
        &self,
        request: Request<api::TriggerSyncRequest>,
    ) -> Result<Response<api::TriggerSyncResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        let mode = Mode::parse(&req.mode)
            .ok_or_else(|| ApiError::invalid("mode", "must be incremental or full"))?;
        let priority = match req.priority {
            0 => 5,
            p @ 1..=9 => u8::try_from(p).unwrap_or(5),
            _ => return Err(ApiError::invalid("priority", "must be 1 to 9 (0: 5)").into()),
        };
        let targets: Vec<(Uuid, SourceKind)> = if req.integration_id.is_empty() {
            let mut types = Vec::with_capacity(req.integration_types.len());
            for t in &req.integration_types {
                types.push(SourceKind::parse("integration_types", t).map_err(ApiError::from)?);
            }
            let rows = queries::integrations(&self.pool, tenant)
                .await
                .map_err(ApiError::from)?;
            let targets: Vec<_> = rows
                .iter()
                .filter(|s| s.enabled)
                .filter_map(|s| Some((s.id?, s.kind?)))
                .filter(|(_, kind)| types.is_empty() || types.contains(kind))
                .collect();
            if targets.is_empty() {
                return Err(
                    ApiError::NotFound("an enabled integration of these types".into()).into(),
                );
            }
            targets
        } else {
            if !req.integration_types.is_empty() {
                return Err(ApiError::invalid(
                    "integration_types",
                    "only without an integration_id",
                )
                .into());
            }
            let id = validate::uuid("integration_id", &req.integration_id)?;
            let state = self.load(tenant, id).await?;
            if !state.enabled {
                return Err(
                    ApiError::FailedPrecondition("the integration is disabled".into()).into(),
                );
            }
            vec![(id, state.kind.unwrap_or(SourceKind::HttpJson))]
        };
        let mut runs = Vec::with_capacity(targets.len());
        for (id, kind) in targets {
            let job = Job {
                tenant_id: tenant,
                integration_id: id,
                run_id: Uuid::now_v7(),
                mode,
                priority,
            };
            job.enqueue(&self.store)
                .await
                .map_err(|e| ApiError::Unavailable(format!("the job queue: {e}")))?;
            runs.push(api::TriggeredRun {
                integration_id: id.to_string(),
                r#type: kind.as_str().into(),
                run_id: job.run_id.to_string(),
            });
        }
        Ok(Response::new(api::TriggerSyncResponse {
            run_id: if req.integration_id.is_empty() {
                String::new()
            } else {
                runs.first().map(|r| r.run_id.clone()).unwrap_or_default()
            },
            runs,
        }))
    }

    async fn get_sync_status(
        &self,
        request: Request<api::GetSyncStatusRequest>,
    ) -> Result<Response<api::GetSyncStatusResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        self.wait(req.min_position).await?;
        let rows = queries::integrations(&self.pool, tenant)
            .await
            .map_err(ApiError::from)?;
        let now = self.clock.now();
        let integrations: Vec<_> = rows.iter().map(|s| convert::status(s, now)).collect();
        let day = now.date_naive();
        let budget = &self.runner.budget;
        let used = budget.used(tenant, day).await.map_err(ApiError::from)?;
        Ok(Response::new(api::GetSyncStatusResponse {
            overall_status: convert::overall(&integrations),
            integrations,
            api_budget: Some(api::ApiBudget {
                day: day.to_string(),
                used,
                limit: budget.limit(tenant),
            }),
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<api::ListAlertsRequest>,
    ) -> Result<Response<api::ListAlertsResponse>, Status> {
        let req = request.get_ref();
        let tenant = self.tenant(&request, &req.tenant_id)?;
        self.wait(req.min_position).await?;
        let rows = queries::alerts(&self.pool, tenant, 500)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::ListAlertsResponse {
            alerts: rows
                .into_iter()
                .map(|a| api::Alert {
                    alert_id: a.alert_id,
                    integration_id: a.integration_id.to_string(),
                    kind: a.kind,
                    message: a.message,
                    raised_at: Some(tenantry_eventstore::time::to_proto(a.raised_at)),
                })
                .collect(),
        }))
    }
}
