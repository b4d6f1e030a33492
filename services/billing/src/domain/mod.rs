//! The billing service's aggregates, pure: no I/O, no clock; lookups arrive in the commands.
//!
//! - [`money`]: currencies and integer minor units.

pub mod money;

pub use tenantry_kit::error::DomainError;
