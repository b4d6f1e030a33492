//! The auth service's aggregates, pure: no I/O, no clock, no randomness; secrets arrive in
//! the commands already hashed or sealed.
//!
//! - [`user`]: an identity, `(issuer, subject)`, and whether it is a platform admin.
//! - [`credential`]: a local user's password hash and failed-login throttle, keyed by e-mail.
//! - [`session`]: a refresh-token family that rotates on every use.
//! - [`team`]: a tenant's memberships and invitations.
//! - [`service_accounts`]: a tenant's machine clients and their API keys, and the platform's
//!   (Tenantry's services calling each other, ADR 0011).
//! - [`identity_providers`]: a tenant's OIDC federation settings.
//! - [`events`]: the mapping between those events and their wire types.

pub mod credential;
pub mod events;
pub mod identity_providers;
pub mod service_accounts;
pub mod session;
pub mod team;
pub mod user;

use tenantry_kit::Role;
pub use tenantry_kit::error::DomainError;
use uuid::Uuid;

/// Namespace of the ids derived from names (users from `(issuer, subject)`, credentials from
/// e-mail addresses), so the same name always finds the same aggregate.
const NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_2d0e_8a3b_4f55_9d7e_0b5a_c4e1_7a90);

pub fn derived_id(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{kind}\n{name}").as_bytes())
}

/// A role a membership, invitation or service account may hold (not `platform_admin`).
pub fn tenant_role(field: &'static str, value: &str) -> Result<Role, DomainError> {
    match value.parse::<Role>() {
        Ok(Role::PlatformAdmin) | Err(()) => Err(DomainError::invalid(
            field,
            format!("unknown role {value:?}: expected viewer, member or owner"),
        )),
        Ok(role) => Ok(role),
    }
}

/// Constant-time equality of two digests.
pub fn same_digest(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
