//! Sync's contract: each tenant's `integration` (id = integration id): its source, schedule,
//! sealed credentials, runs and health; and the `USAGE` meters sync reports.

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

/// Records a sync run wrote (inserted or changed), reported on `usage.<tenant>.records`.
pub const RECORDS: &str = "records";
/// Bytes of the records a sync run wrote, reported on `usage.<tenant>.storage`.
pub const STORAGE: &str = "storage";

/// An integration of a tenant with an external system.
// Created carries the whole configuration; events are short-lived values, not stored en masse.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum IntegrationEvent {
    Created(pb::IntegrationCreated),
    CredentialsReplaced(pb::CredentialsReplaced),
    ScheduleChanged(pb::ScheduleChanged),
    Enabled(pb::IntegrationEnabled),
    Disabled(pb::IntegrationDisabled),
    RunSucceeded(pb::RunSucceeded),
    RunFailed(pb::RunFailed),
    Failing(pb::IntegrationFailing),
    AlertRaised(pb::AlertRaised),
}

event_table!(IntegrationEvent in "integration" {
    Created => "integration.created.v1": pb::IntegrationCreated,
    CredentialsReplaced => "integration.credentials_replaced.v1": pb::CredentialsReplaced,
    ScheduleChanged => "integration.schedule_changed.v1": pb::ScheduleChanged,
    Enabled => "integration.enabled.v1": pb::IntegrationEnabled,
    Disabled => "integration.disabled.v1": pb::IntegrationDisabled,
    RunSucceeded => "integration.run_succeeded.v1": pb::RunSucceeded,
    RunFailed => "integration.run_failed.v1": pb::RunFailed,
    Failing => "integration.failing.v1": pb::IntegrationFailing,
    AlertRaised => "integration.alert_raised.v1": pb::AlertRaised,
});
