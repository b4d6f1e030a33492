//! The sync service's aggregate, pure: no I/O, no clock. Credentials arrive sealed in the
//! commands (sealing needs the keystore, which is I/O).
//!
//! - [`source`]: the integration types, their configuration and the credentials each needs.
//! - [`schedule`]: manual, hourly, daily, weekly or a cron expression, and when it runs next.
//! - [`integration`]: the `integration` aggregate: configuration, schedule, cursors, health.

pub mod integration;
mod proto_serde;
pub mod schedule;
pub mod source;

pub use integration::{Integration, IntegrationCommand, NewIntegration, RunOutcome};
pub use schedule::Schedule;
pub use source::SourceKind;
pub use tenantry_kit::error::DomainError;
