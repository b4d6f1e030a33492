//! Domain values as the API's messages.

use tenantry_eventstore::time;
use tenantry_proto::billing::v1 as api;
use tenantry_proto::events::v1 as pb;

use crate::domain::{Plan, Subscription};

pub fn plan(p: &Plan) -> api::Plan {
    api::Plan {
        name: p.name.clone(),
        display_name: p.display_name.clone(),
        price_minor: p.price_minor,
        currency: p.currency.code().into(),
        interval: p.interval.to_proto() as i32,
        limits: Some(p.limits.clone()),
        retired: p.retired,
    }
}

/// A client's plan as the definition the domain validates.
pub fn definition(p: api::Plan) -> pb::PlanDefined {
    pb::PlanDefined {
        name: p.name,
        display_name: p.display_name,
        price_minor: p.price_minor,
        currency: p.currency,
        interval: p.interval,
        limits: p.limits,
        retired: p.retired,
    }
}

pub fn subscription(s: &Subscription) -> api::Subscription {
    let (provider, customer_id) = s
        .customers
        .iter()
        .next()
        .map(|(p, c)| (p.clone(), c.clone()))
        .unwrap_or_default();
    api::Subscription {
        tenant_id: s.tenant_id.map(|t| t.to_string()).unwrap_or_default(),
        plan: s.price.as_ref().map(|p| p.plan.clone()).unwrap_or_default(),
        status: s.status.to_proto() as i32,
        trial_ends_at: s.trial_ends_at.map(time::to_proto),
        period_start: Some(time::to_proto(s.period_start)),
        period_end: Some(time::to_proto(s.period_end)),
        change_scheduled: s.scheduled.is_some(),
        scheduled_plan: s.scheduled.clone().unwrap_or_default(),
        billing_email: s.billing_email.clone(),
        provider,
        customer_id,
        past_due_since: s.past_due_since.map(time::to_proto),
    }
}
