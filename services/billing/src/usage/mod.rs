//! Usage: the `USAGE` stream rolled up per tenant, meter and hour, what it drives, and its
//! reports.
//!
//! - [`rollup`]: the projection that adds reports up, exactly once, and records crossings.
//! - [`alerts`]: each quota alert e-mailed once to the tenant's billing address.
//! - [`quota`]: the dispatcher that appends crossings and monthly resets to the log.
//! - [`report`]: a report's period, and the rows rendered as CSV or JSON.

pub mod alerts;
pub mod quota;
pub mod report;
pub mod rollup;
