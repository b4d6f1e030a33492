//! The gateway's aggregate, pure: a tenant's route (hosts, path prefix, algorithm, backends,
//! health check, drained backends).
//!
//! - [`route`]: the aggregate and the validation of its settings.
//! - [`events`]: its events' wire types, and those of other services the gateway reads.

pub mod events;
pub mod route;

pub use tenantry_kit::error::DomainError;
