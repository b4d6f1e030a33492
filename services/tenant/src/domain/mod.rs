//! The tenant service's aggregates, pure: no I/O, no clock; lookups arrive in the commands.
//!
//! - [`tenant`]: a tenant's profile, type, settings, flags, domains and status.
//! - [`reservation`]: platform-wide unique names (slugs, custom domains), claimed by appending
//!   to the name's own subject with an expected sequence, so two tenants can never race to
//!   the same name.
//! - [`events`]: the mapping between the aggregates' events and their wire types.
//! - [`settings`]: settings, limits and their validation.

pub mod events;
pub mod reservation;
pub mod settings;
pub mod tenant;

pub use reservation::{Reservation, ReservationCommand};
pub use settings::{Limits, Settings};
pub use tenant::{Status, Tenant, TenantCommand, TenantKind};
pub use tenantry_kit::error::DomainError;
