//! `KeyService`: signing-key rotation and platform admins (platform admins only).

use tenantry_kit::{ApiError, TenantContext, command, validate};
use tenantry_proto::auth::v1::{self as api, key_service_server::KeyService};
use tonic::{Request, Response, Status};

use super::{AuthApi, user_address};
use crate::domain::user::UserCommand;

#[tonic::async_trait]
impl KeyService for AuthApi {
    async fn rotate_signing_key(
        &self,
        _request: Request<api::RotateSigningKeyRequest>,
    ) -> Result<Response<api::RotateSigningKeyResponse>, Status> {
        let key = self.keys.rotate().await?;
        tracing::info!(kid = %key.key.kid, activates_at = %key.activates_at, "signing key rotated");
        Ok(Response::new(api::RotateSigningKeyResponse {
            kid: key.key.kid,
            activates_at: Some(tenantry_eventstore::time::to_proto(key.activates_at)),
        }))
    }

    async fn list_signing_keys(
        &self,
        _request: Request<api::ListSigningKeysRequest>,
    ) -> Result<Response<api::ListSigningKeysResponse>, Status> {
        let signing = self.keys.signing_key().ok().map(|k| k.kid);
        let keys = self
            .keys
            .ring()
            .keys
            .iter()
            .map(|k| api::SigningKeyInfo {
                kid: k.key.kid.clone(),
                created_at: Some(tenantry_eventstore::time::to_proto(k.created_at)),
                activates_at: Some(tenantry_eventstore::time::to_proto(k.activates_at)),
                retired_at: k.retired_at.map(tenantry_eventstore::time::to_proto),
                signing: signing.as_deref() == Some(k.key.kid.as_str()),
            })
            .collect();
        Ok(Response::new(api::ListSigningKeysResponse { keys }))
    }

    async fn grant_platform_admin(
        &self,
        request: Request<api::GrantPlatformAdminRequest>,
    ) -> Result<Response<api::CommandResponse>, Status> {
        let caller = TenantContext::from_request(&request)?;
        let user_id = validate::uuid("user_id", &request.get_ref().user_id)?;
        let meta = command::meta(&request, &caller, &self.clock)?;
        let executed = self
            .users
            .execute(
                &user_address(user_id)?,
                &UserCommand::GrantPlatformAdmin,
                &meta,
            )
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(api::CommandResponse {
            position: executed.position,
        }))
    }
}
