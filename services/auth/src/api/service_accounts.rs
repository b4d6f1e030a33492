//! `ServiceAccountService`: machine clients of the token's tenant and their API keys.

use tenantry_kit::{ApiError, TenantContext, command, validate};
use tenantry_proto::auth::v1::{
    self as api, service_account_service_server::ServiceAccountService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::convert::{role_from_proto, role_to_proto};
use super::{AuthApi, tenant_address};
use crate::crypto::random;
use crate::domain::service_accounts::{ServiceAccountCommand, ServiceAccounts};

const MAX_NAME: usize = 100;

impl AuthApi {
    async fn accounts_command<T: prost::Message>(
        &self,
        request: &Request<T>,
        command: ServiceAccountCommand,
    ) -> Result<tenantry_eventstore::Executed<ServiceAccounts>, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let tenant_id = caller.tenant()?;
        let meta = command::meta(request, &caller, &self.clock)?;
        Ok(self
            .accounts
            .execute(
                &tenant_address::<ServiceAccounts>(tenant_id)?,
                &command,
                &meta,
            )
            .await?)
    }

    async fn caller_accounts<T>(&self, request: &Request<T>) -> Result<ServiceAccounts, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let tenant_id = caller.tenant()?;
        Ok(self
            .accounts
            .load(&tenant_address::<ServiceAccounts>(tenant_id)?)
            .await?
            .0)
    }
}

#[tonic::async_trait]
impl ServiceAccountService for AuthApi {
    async fn create_service_account(
        &self,
        request: Request<api::CreateServiceAccountRequest>,
    ) -> Result<Response<api::CreateServiceAccountResponse>, Status> {
        let r = request.get_ref();
        validate::text("name", &r.name, MAX_NAME)?;
        let role = role_from_proto("role", r.role)?;
        let id = Uuid::now_v7();
        let executed = self
            .accounts_command(
                &request,
                ServiceAccountCommand::Create {
                    id,
                    name: r.name.clone(),
                    role,
                },
            )
            .await?;
        Ok(Response::new(api::CreateServiceAccountResponse {
            service_account: Some(api::ServiceAccount {
                service_account_id: id.to_string(),
                name: r.name.clone(),
                role: role_to_proto(role) as i32,
            }),
            position: executed.position,
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<api::ListServiceAccountsRequest>,
    ) -> Result<Response<api::ListServiceAccountsResponse>, Status> {
        let accounts = self.caller_accounts(&request).await?;
        let service_accounts = accounts
            .accounts
            .iter()
            .map(|(id, a)| api::ServiceAccount {
                service_account_id: id.to_string(),
                name: a.name.clone(),
                role: role_to_proto(a.role) as i32,
            })
            .collect();
        Ok(Response::new(api::ListServiceAccountsResponse {
            service_accounts,
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<api::CreateApiKeyRequest>,
    ) -> Result<Response<api::CreateApiKeyResponse>, Status> {
        let r = request.get_ref();
        let account_id = validate::uuid("service_account_id", &r.service_account_id)?;
        validate::optional_text("name", &r.name, MAX_NAME)?;
        let key_id = Uuid::now_v7();
        let prefix = format!(
            "{}{}",
            tenantry_kit::auth::api_keys::API_KEY_PREFIX,
            random::short_id()
        );
        let api_key = format!("{prefix}_{}", random::secret());
        let executed = self
            .accounts_command(
                &request,
                ServiceAccountCommand::CreateKey {
                    account_id,
                    key_id,
                    name: r.name.clone(),
                    prefix: prefix.clone(),
                    digest: random::digest(&api_key),
                },
            )
            .await?;
        Ok(Response::new(api::CreateApiKeyResponse {
            key_id: key_id.to_string(),
            api_key,
            prefix,
            position: executed.position,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<api::ListApiKeysRequest>,
    ) -> Result<Response<api::ListApiKeysResponse>, Status> {
        let prefix = request.get_ref().prefix.clone();
        validate::optional_text("prefix", &prefix, 64)?;
        let accounts = self.caller_accounts(&request).await?;
        let api_keys = accounts
            .accounts
            .iter()
            .flat_map(|(account, a)| {
                a.keys.iter().map(move |(id, k)| api::ApiKey {
                    key_id: id.to_string(),
                    service_account_id: account.to_string(),
                    name: k.name.clone(),
                    prefix: k.prefix.clone(),
                    revoked: k.revoked,
                })
            })
            .filter(|k| k.prefix.starts_with(&prefix))
            .collect();
        Ok(Response::new(api::ListApiKeysResponse { api_keys }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<api::RevokeApiKeyRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let key_id = validate::uuid("key_id", &request.get_ref().key_id)?;
        let executed = self
            .accounts_command(&request, ServiceAccountCommand::RevokeKey { key_id })
            .await?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }
}
