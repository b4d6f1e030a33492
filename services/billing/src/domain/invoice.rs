//! A subscription's invoices: drafted when a period closes, numbered 1, 2, 3… per tenant.
//!
//! Billed as Stripe bills: the base price in advance (the period starting now, prorated
//! while a trial still covers part of it), and in arrears what the closed period accrued:
//! plan changes' prorations and each meter's overage over its quota.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tenantry_eventstore::time;
use tenantry_proto::events::v1 as pb;

use super::DomainError;
use super::money::prorate;
use super::period::add_months;
use super::plan::Plan;
use super::subscription::{Line, Subscription, plan_changed};
use tenantry_contracts::billing::SubscriptionEvent as E;

pub(super) fn close_period(
    sub: &Subscription,
    next: Option<&Plan>,
    usage: &BTreeMap<String, u64>,
    now: DateTime<Utc>,
) -> Result<Vec<E>, DomainError> {
    let price = sub.require_open()?;
    if now < sub.period_end {
        return Ok(vec![]);
    }
    let start = sub.period_end;
    let mut transition = Vec::new();
    // The plan of the next period: (name, price, months), or none when it ends.
    let coming: Option<(String, i64, u32)> = match sub.scheduled.as_deref() {
        Some("") => {
            transition.push(E::Canceled(pb::SubscriptionCanceled {
                effective_at: Some(time::to_proto(start)),
            }));
            None
        }
        Some(scheduled) => {
            let next = next
                .filter(|p| p.name == scheduled)
                .ok_or_else(|| DomainError::NotFound(format!("plan {scheduled}")))?;
            let end = add_months(start, next.interval.months());
            transition.push(E::PlanChanged(plan_changed(
                &price.plan,
                next,
                0,
                0,
                start,
                start,
                end,
            )));
            transition.push(E::PlanLimitsChanged(next.limits.clone()));
            Some((next.name.clone(), next.price_minor, next.interval.months()))
        }
        None => {
            let end = add_months(start, price.interval.months());
            transition.push(E::PeriodRenewed(pb::PeriodRenewed {
                period_start: Some(time::to_proto(start)),
                period_end: Some(time::to_proto(end)),
            }));
            Some((
                price.plan.clone(),
                price.price_minor,
                price.interval.months(),
            ))
        }
    };

    let mut lines = Vec::new();
    if let Some((plan, amount, months)) = coming {
        let end = add_months(start, months);
        // A trial still running covers the start of the period.
        let billed_from = sub
            .trial_ends_at
            .filter(|t| *t > start)
            .unwrap_or(start)
            .min(end);
        let base = prorate(
            amount,
            (end - billed_from).num_seconds(),
            (end - start).num_seconds().max(1),
        );
        lines.push(Line {
            kind: "base".into(),
            description: format!(
                "{plan}, {} to {}",
                start.format("%Y-%m-%d"),
                end.format("%Y-%m-%d")
            ),
            meter: String::new(),
            quantity: 1,
            amount_minor: base,
        });
    }
    lines.extend(sub.accrued.iter().cloned());
    for quota in sub
        .limits
        .meters
        .iter()
        .filter(|q| q.overage_price_minor > 0)
    {
        let used = usage.get(&quota.meter).copied().unwrap_or(0);
        if quota.limit == 0 || used <= quota.limit || quota.overage_unit == 0 {
            continue;
        }
        let over = used - quota.limit;
        let units = over.div_ceil(quota.overage_unit);
        let amount = i64::try_from(units)
            .unwrap_or(i64::MAX)
            .saturating_mul(quota.overage_price_minor);
        lines.push(Line {
            kind: "overage".into(),
            description: format!(
                "{over} {} over the {} included ({} per {})",
                quota.meter, quota.limit, quota.overage_price_minor, quota.overage_unit
            ),
            meter: quota.meter.clone(),
            quantity: over,
            amount_minor: amount,
        });
    }
    lines.retain(|l| l.amount_minor != 0);

    let mut events = Vec::new();
    if !lines.is_empty() {
        let total = lines
            .iter()
            .fold(0i64, |sum, l| sum.saturating_add(l.amount_minor));
        events.push(E::InvoiceDrafted(pb::InvoiceDrafted {
            invoice: Some(pb::Invoice {
                number: sub.invoices + 1,
                status: pb::InvoiceStatus::Draft as i32,
                period_start: Some(time::to_proto(sub.period_start)),
                period_end: Some(time::to_proto(sub.period_end)),
                currency: price.currency.clone(),
                lines: lines.iter().map(Line::to_proto).collect(),
                total_minor: total,
                issued_at: Some(time::to_proto(now)),
                plan: price.plan.clone(),
            }),
        }));
    }
    events.extend(transition);
    Ok(events)
}

/// What a plan change adds to the period's invoice: the unused part of the old plan as a
/// credit, the rest of the period on the new one as a charge.
pub(super) fn accrue(sub: &mut Subscription, change: &pb::PlanChanged) {
    if change.proration_credit_minor != 0 {
        sub.accrued.push(Line {
            kind: "proration".into(),
            description: format!("unused time on {}", change.from_plan),
            meter: String::new(),
            quantity: 1,
            amount_minor: -change.proration_credit_minor,
        });
    }
    if change.proration_charge_minor != 0 {
        sub.accrued.push(Line {
            kind: "proration".into(),
            description: format!("remaining time on {}", change.to_plan),
            meter: String::new(),
            quantity: 1,
            amount_minor: change.proration_charge_minor,
        });
    }
}

/// The unpaid invoices a payment of `amount` in `currency` settles, oldest first.
pub(super) fn settled_by<'a>(
    sub: &'a Subscription,
    amount: i64,
    currency: &str,
) -> impl Iterator<Item = u64> + use<'a> {
    let same_currency = sub
        .price
        .as_ref()
        .is_some_and(|p| p.currency.eq_ignore_ascii_case(currency));
    let mut left = if same_currency { amount } else { 0 };
    sub.unpaid.iter().filter_map(move |(number, (_, total))| {
        if *total <= left {
            left -= total;
            Some(*number)
        } else {
            left = 0;
            None
        }
    })
}
