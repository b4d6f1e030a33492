//! Usage: the `USAGE` stream rolled up per tenant, meter and hour, and its reports.
//!
//! - [`report`]: a report's period, and the rows rendered as CSV or JSON.

pub mod report;
