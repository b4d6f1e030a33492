//! Billing's contract: a tenant's `subscription` (one per tenant, id = tenant id): the limits
//! of its plan and the state of its quotas, which the gateway enforces.

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

/// Billing's events about a tenant's plan and quotas.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    PlanLimitsChanged(pb::PlanLimitsChanged),
    QuotaThresholdCrossed(pb::QuotaThresholdCrossed),
    QuotaReset(pb::QuotaReset),
}

event_table!(SubscriptionEvent in "subscription" {
    PlanLimitsChanged => "subscription.plan_limits_changed.v1": pb::PlanLimitsChanged,
    QuotaThresholdCrossed => "subscription.quota_threshold_crossed.v1": pb::QuotaThresholdCrossed,
    QuotaReset => "subscription.quota_reset.v1": pb::QuotaReset,
});
