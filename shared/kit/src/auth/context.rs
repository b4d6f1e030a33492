use uuid::Uuid;

use super::Role;
use crate::ApiError;
use crate::db::Scope;

/// The verified caller of a request, put into its extensions by the auth middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantContext {
    /// The tenant the token was issued for; `None` only for platform admins.
    pub tenant_id: Option<Uuid>,
    /// `sub` of the token: the user or service account.
    pub subject: String,
    pub role: Role,
    /// `jti` of the token, for the audit trail.
    pub token_id: String,
}

impl TenantContext {
    /// Reads the context of a request that passed the middleware.
    pub fn from_request<T>(request: &tonic::Request<T>) -> Result<Self, ApiError> {
        request
            .extensions()
            .get::<TenantContext>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("no verified caller".into()))
    }

    pub fn is_platform_admin(&self) -> bool {
        self.role == Role::PlatformAdmin
    }

    /// Checks that the caller may act on `tenant_id`. Another tenant's object answers
    /// `NOT_FOUND`, as if it did not exist: its existence is not disclosed.
    pub fn authorize_tenant(&self, tenant_id: Uuid) -> Result<(), ApiError> {
        if self.is_platform_admin() || self.tenant_id == Some(tenant_id) {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("tenant {tenant_id}")))
        }
    }

    /// The tenant a tenant-scoped call acts on: the token's. A token without one (a platform
    /// admin's platform token) is refused: such calls need a token issued for a tenant.
    pub fn tenant(&self) -> Result<Uuid, ApiError> {
        self.tenant_id.ok_or_else(|| {
            ApiError::FailedPrecondition(
                "this call acts on the token's tenant; use a token issued for a tenant".into(),
            )
        })
    }

    /// The rows the caller may read: its tenant's, or every tenant's for a platform admin.
    pub fn scope(&self) -> Result<Scope, ApiError> {
        if self.is_platform_admin() {
            return Ok(Scope::Platform);
        }
        self.tenant_id
            .map(Scope::Tenant)
            .ok_or_else(|| ApiError::PermissionDenied("token has no tenant".into()))
    }

    /// The actor recorded on events.
    pub fn actor(&self) -> String {
        self.subject.clone()
    }
}
