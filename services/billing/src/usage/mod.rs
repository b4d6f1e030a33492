//! Usage: the `USAGE` stream rolled up per tenant, meter and hour, and its reports.
