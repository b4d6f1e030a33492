//! `ServiceAccountService`: machine clients and their API keys, of the token's tenant or, with
//! `platform`, of the platform (ADR 0011).

use tenantry_eventstore::AggregateAddress;
use tenantry_kit::{ApiError, Role, TenantContext, command, validate};
use tenantry_proto::auth::v1::{
    self as api, service_account_service_server::ServiceAccountService,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::convert::{account_role_to_proto, role_from_proto};
use super::{AuthApi, platform_accounts_address, tenant_address};
use crate::crypto::random;
use crate::domain::service_accounts::{AccountScope, ServiceAccountCommand, ServiceAccounts};

const MAX_NAME: usize = 100;

/// The service accounts a request acts on: the token's tenant's, or with `platform` the
/// platform's. Every RPC of the service goes through here, so this is the one place that
/// keeps tenants away from platform accounts: the RPCs' declared roles are tenant roles, and
/// `platform` raises the bar to platform admin.
fn scope_of(
    caller: &TenantContext,
    platform: bool,
) -> Result<(AggregateAddress, AccountScope), ApiError> {
    if platform {
        if !caller.is_platform_admin() {
            return Err(ApiError::PermissionDenied(
                "platform service accounts are for platform admins".into(),
            ));
        }
        return Ok((platform_accounts_address()?, AccountScope::Platform));
    }
    Ok((
        tenant_address::<ServiceAccounts>(caller.tenant()?)?,
        AccountScope::Tenant,
    ))
}

/// The role a new account gets: a tenant role, named; or for a platform account
/// `platform_admin`, which it may name or leave unspecified.
fn account_role(scope: AccountScope, value: i32) -> Result<Role, ApiError> {
    match scope {
        AccountScope::Tenant => role_from_proto("role", value),
        AccountScope::Platform if value == api::Role::Unspecified as i32 => Ok(Role::PlatformAdmin),
        AccountScope::Platform => match validate::known_enum::<api::Role>("role", value)? {
            api::Role::PlatformAdmin => Ok(Role::PlatformAdmin),
            _ => Err(ApiError::invalid(
                "role",
                "a platform service account is platform_admin; leave role unspecified",
            )),
        },
    }
}

impl AuthApi {
    async fn accounts_command<T: prost::Message>(
        &self,
        request: &Request<T>,
        platform: bool,
        command: ServiceAccountCommand,
    ) -> Result<tenantry_eventstore::Executed<ServiceAccounts>, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let (address, _) = scope_of(&caller, platform)?;
        let meta = command::meta(request, &caller, &self.clock)?;
        Ok(self.accounts.execute(&address, &command, &meta).await?)
    }

    async fn caller_accounts<T>(
        &self,
        request: &Request<T>,
        platform: bool,
    ) -> Result<ServiceAccounts, ApiError> {
        let caller = TenantContext::from_request(request)?;
        let (address, _) = scope_of(&caller, platform)?;
        Ok(self.accounts.load(&address).await?.0)
    }
}

#[tonic::async_trait]
impl ServiceAccountService for AuthApi {
    async fn create_service_account(
        &self,
        request: Request<api::CreateServiceAccountRequest>,
    ) -> Result<Response<api::CreateServiceAccountResponse>, Status> {
        let r = request.get_ref();
        // Who may, before what: a tenant's owner learns nothing about platform accounts.
        let caller = TenantContext::from_request(&request)?;
        let (_, scope) = scope_of(&caller, r.platform)?;
        validate::text("name", &r.name, MAX_NAME)?;
        let role = account_role(scope, r.role)?;
        let id = Uuid::now_v7();
        let executed = self
            .accounts_command(
                &request,
                r.platform,
                ServiceAccountCommand::Create {
                    id,
                    name: r.name.clone(),
                    role,
                    scope,
                },
            )
            .await?;
        Ok(Response::new(api::CreateServiceAccountResponse {
            service_account: Some(api::ServiceAccount {
                service_account_id: id.to_string(),
                name: r.name.clone(),
                role: account_role_to_proto(role) as i32,
            }),
            position: executed.position,
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<api::ListServiceAccountsRequest>,
    ) -> Result<Response<api::ListServiceAccountsResponse>, Status> {
        let accounts = self
            .caller_accounts(&request, request.get_ref().platform)
            .await?;
        let service_accounts = accounts
            .accounts
            .iter()
            .map(|(id, a)| api::ServiceAccount {
                service_account_id: id.to_string(),
                name: a.name.clone(),
                role: account_role_to_proto(a.role) as i32,
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
                r.platform,
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
        let accounts = self
            .caller_accounts(&request, request.get_ref().platform)
            .await?;
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
        let r = request.get_ref();
        let key_id = validate::uuid("key_id", &r.key_id)?;
        let executed = self
            .accounts_command(
                &request,
                r.platform,
                ServiceAccountCommand::RevokeKey { key_id },
            )
            .await?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }
}
