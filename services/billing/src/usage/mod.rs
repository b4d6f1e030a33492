//! Usage: the `USAGE` stream rolled up per tenant, meter and hour, what it drives, and its
//! reports.
//!
//! - [`rollup`]: the projection that adds reports up, exactly once, and records crossings.
//! - [`quota`]: the dispatcher that appends crossings and monthly resets to the log.
//! - [`report`]: a report's period, and the rows rendered as CSV or JSON.

pub mod quota;
pub mod report;
pub mod rollup;
