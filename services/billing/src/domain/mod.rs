//! The billing service's aggregates, pure: no I/O, no clock; lookups arrive in the commands.
//!
//! - [`plan`]: a plan of the catalog, its validation, and the default catalog.
//! - [`subscription`]: a tenant's subscription: plan changes, periods, payments, quotas.
//! - [`invoice`]: a closed period's invoice: base, prorations, overage.
//! - [`money`]: currencies and integer minor units.
//! - [`period`]: calendar-month periods.

pub mod invoice;
pub mod money;
pub mod period;
pub mod plan;
pub mod subscription;

pub use plan::{CatalogEntry, Plan, PlanCommand};
pub use subscription::{Status, Subscription, SubscriptionCommand};
pub use tenantry_kit::error::DomainError;
