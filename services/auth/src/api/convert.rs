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

/// A tenant role from a request field; unknown or unspecified values name the field.
pub fn role_from_proto(field: &str, value: i32) -> Result<Role, ApiError> {
    match tenantry_kit::validate::known_enum::<api::Role>(field, value)? {
        api::Role::Viewer => Ok(Role::Viewer),
        api::Role::Member => Ok(Role::Member),
        api::Role::Owner => Ok(Role::Owner),
        api::Role::Unspecified => Err(ApiError::invalid(field, "is required")),
    }
}
