//! Event names and wire types: the gateway's own `route` events, and the `subscription`
//! events billing publishes that the gateway enforces.

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum RouteEvent {
    Upserted(pb::RouteUpserted),
    Removed(pb::RouteRemoved),
    BackendDrained(pb::BackendDrained),
    BackendUndrained(pb::BackendUndrained),
}

event_table!(RouteEvent {
    Upserted => "route.upserted.v1": pb::RouteUpserted,
    Removed => "route.removed.v1": pb::RouteRemoved,
    BackendDrained => "route.backend_drained.v1": pb::BackendDrained,
    BackendUndrained => "route.backend_undrained.v1": pb::BackendUndrained,
});

/// Billing's events about a tenant's plan and quotas (aggregate `subscription`).
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    PlanLimitsChanged(pb::PlanLimitsChanged),
    QuotaThresholdCrossed(pb::QuotaThresholdCrossed),
    QuotaReset(pb::QuotaReset),
}

event_table!(SubscriptionEvent {
    PlanLimitsChanged => "subscription.plan_limits_changed.v1": pb::PlanLimitsChanged,
    QuotaThresholdCrossed => "subscription.quota_threshold_crossed.v1": pb::QuotaThresholdCrossed,
    QuotaReset => "subscription.quota_reset.v1": pb::QuotaReset,
});
