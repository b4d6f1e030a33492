//! Billing's contract: the `plan` catalog (platform-wide, id = plan name) and each tenant's
//! `subscription` (id = tenant id): its plan, payments, and the limits and quota states the
//! gateway and the other services enforce.

use tenantry_eventstore::event_table;
use tenantry_proto::events::v1 as pb;

/// The meter of the gateway's requests (a report's `requests`).
pub const REQUESTS: &str = "requests";
/// The meter of the gateway's body bytes (a report's `bytes_in + bytes_out`).
pub const BYTES: &str = "bytes";
/// The gateway's requests counted per day (UTC): the plan's API calls per day.
pub const API_CALLS: &str = "api_calls";

/// A plan of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanEvent {
    Defined(pb::PlanDefined),
}

event_table!(PlanEvent in "plan" {
    Defined => "plan.defined.v1": pb::PlanDefined,
});

/// Billing's events about a tenant's subscription, plan and quotas.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    Opened(pb::SubscriptionOpened),
    PlanLimitsChanged(pb::PlanLimitsChanged),
    PlanChanged(pb::PlanChanged),
    ChangeScheduled(pb::ChangeScheduled),
    PeriodRenewed(pb::PeriodRenewed),
    Canceled(pb::SubscriptionCanceled),
    CustomerLinked(pb::CustomerLinked),
    BillingEmailChanged(pb::BillingEmailChanged),
    PaymentFailed(pb::PaymentFailed),
    PaymentSucceeded(pb::PaymentSucceeded),
    Suspended(pb::SubscriptionSuspended),
    QuotaThresholdCrossed(pb::QuotaThresholdCrossed),
    QuotaReset(pb::QuotaReset),
    InvoiceDrafted(pb::InvoiceDrafted),
    InvoiceFinalized(pb::InvoiceFinalized),
    InvoicePaid(pb::InvoicePaid),
    InvoiceVoided(pb::InvoiceVoided),
}

event_table!(SubscriptionEvent in "subscription" {
    Opened => "subscription.opened.v1": pb::SubscriptionOpened,
    PlanLimitsChanged => "subscription.plan_limits_changed.v1": pb::PlanLimitsChanged,
    PlanChanged => "subscription.plan_changed.v1": pb::PlanChanged,
    ChangeScheduled => "subscription.change_scheduled.v1": pb::ChangeScheduled,
    PeriodRenewed => "subscription.period_renewed.v1": pb::PeriodRenewed,
    Canceled => "subscription.canceled.v1": pb::SubscriptionCanceled,
    CustomerLinked => "subscription.customer_linked.v1": pb::CustomerLinked,
    BillingEmailChanged => "subscription.billing_email_changed.v1": pb::BillingEmailChanged,
    PaymentFailed => "subscription.payment_failed.v1": pb::PaymentFailed,
    PaymentSucceeded => "subscription.payment_succeeded.v1": pb::PaymentSucceeded,
    Suspended => "subscription.suspended.v1": pb::SubscriptionSuspended,
    QuotaThresholdCrossed => "subscription.quota_threshold_crossed.v1": pb::QuotaThresholdCrossed,
    QuotaReset => "subscription.quota_reset.v1": pb::QuotaReset,
    InvoiceDrafted => "subscription.invoice_drafted.v1": pb::InvoiceDrafted,
    InvoiceFinalized => "subscription.invoice_finalized.v1": pb::InvoiceFinalized,
    InvoicePaid => "subscription.invoice_paid.v1": pb::InvoicePaid,
    InvoiceVoided => "subscription.invoice_voided.v1": pb::InvoiceVoided,
});
