//! The orchestration service's aggregate, pure: no I/O, no clock; lookups (the plan's
//! dedicated instances, the tenant's other deployments) arrive in the commands.
//!
//! - [`deployment`]: a tenant's deployment: its spec, lifecycle and observed instances.
//! - [`spec`]: what a valid spec is, field by field, and its defaults.

pub mod deployment;
pub mod spec;

pub use deployment::{Deployment, DeploymentCommand, Pod, Status};
pub use tenantry_kit::error::DomainError;
