//! Between the API's roles and the kit's.

use tenantry_kit::{ApiError, Role};
use tenantry_proto::auth::v1 as api;

pub fn role_to_proto(role: Role) -> api::Role {
    match role {
        Role::Viewer => api::Role::Viewer,
        Role::Member => api::Role::Member,
        // A platform admin's membership view shows the highest tenant role.
        Role::Owner | Role::PlatformAdmin => api::Role::Owner,
    }
}

/// A service account's role as listed: a platform account's is `platform_admin` (a tenant's
/// account never holds it).
pub fn account_role_to_proto(role: Role) -> api::Role {
    match role {
        Role::PlatformAdmin => api::Role::PlatformAdmin,
        tenant => role_to_proto(tenant),
    }
}

/// A tenant role from a request field; unknown or unspecified values name the field, and so
/// does `platform_admin`, which no membership, invitation or tenant's account may hold.
pub fn role_from_proto(field: &str, value: i32) -> Result<Role, ApiError> {
    match tenantry_kit::validate::known_enum::<api::Role>(field, value)? {
        api::Role::Viewer => Ok(Role::Viewer),
        api::Role::Member => Ok(Role::Member),
        api::Role::Owner => Ok(Role::Owner),
        api::Role::Unspecified => Err(ApiError::invalid(field, "is required")),
        api::Role::PlatformAdmin => Err(ApiError::invalid(
            field,
            "platform_admin is not a tenant role",
        )),
    }
}
