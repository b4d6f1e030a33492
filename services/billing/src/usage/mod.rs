//! Usage: the `USAGE` stream rolled up per tenant, meter and hour, and what it drives.
//!
//! - [`rollup`]: the projection that adds reports up, exactly once, and records crossings.
//! - [`quota`]: the dispatcher that appends crossings and monthly resets to the log.

pub mod quota;
pub mod rollup;
