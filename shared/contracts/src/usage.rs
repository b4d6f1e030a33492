//! The `USAGE` stream's contract: metered counts, not events of the log.
//!
//! A report travels on `<usage root>.<tenant_id>.<meter>` and is deduplicated by its message
//! id, `<instance>:<tenant_id>:<sequence>` (the reporter's own sequence), so a retried publish
//! counts once. Gateways report the `http` meter (requests and body bytes); other services
//! add their meters here.

use tenantry_eventstore::{InvalidToken, subject::validate_token};
pub use tenantry_proto::events::v1::UsageReport;

/// Requests and request/response body bytes through the gateway.
pub const HTTP: &str = "http";

/// Dedicated instances' running time (orchestration), in whole hours in `quantity`.
pub const INSTANCE_HOURS: &str = "instance_hours";

/// The subject of `tenant`'s reports for `meter` under the stream's subject root.
pub fn subject(root: &str, tenant_id: &str, meter: &str) -> Result<String, InvalidToken> {
    validate_token("tenant_id", tenant_id)?;
    validate_token("meter", meter)?;
    Ok(format!("{root}.{tenant_id}.{meter}"))
}

/// The message id that deduplicates a report: the reporter's instance and the report's
/// sequence among that instance's reports for the tenant.
pub fn message_id(instance: &str, tenant_id: &str, sequence: u64) -> String {
    format!("{instance}:{tenant_id}:{sequence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_refuse_tokens_that_would_widen_a_filter() {
        assert_eq!(subject("usage", "t1", HTTP).unwrap(), "usage.t1.http");
        assert!(subject("usage", "t1.x", HTTP).is_err());
        assert!(subject("usage", "t1", "*").is_err());
    }
}
