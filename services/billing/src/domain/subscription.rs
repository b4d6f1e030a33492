//! A tenant's subscription (id = tenant id): its plan and price, its billing period, its
//! payments, and the state of its quotas in the current calendar month.
//!
//! Upgrades take effect at once, prorated by the second; downgrades and cancellations wait
//! for the period's end ([`SubscriptionCommand::Renew`]). A failed payment makes it past due;
//! past due beyond the grace, suspended; a payment makes it active again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tenantry_eventstore::{Aggregate, AggregateAddress, EventMeta, InvalidToken, time};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

use super::DomainError;
use super::money::prorate;
use super::period::{Window, add_months, month_start};
use super::plan::{Interval, Plan};
use tenantry_contracts::billing::SubscriptionEvent;

/// The thresholds of a quota that raise an alert, in percent of the limit.
pub const THRESHOLDS: [u32; 3] = [80, 90, 100];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Trialing,
    Active,
    PastDue,
    Suspended,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Suspended => "suspended",
            Self::Canceled => "canceled",
        }
    }

    pub fn to_proto(self) -> pb::SubscriptionStatus {
        match self {
            Self::Trialing => pb::SubscriptionStatus::Trialing,
            Self::Active => pb::SubscriptionStatus::Active,
            Self::PastDue => pb::SubscriptionStatus::PastDue,
            Self::Suspended => pb::SubscriptionStatus::Suspended,
            Self::Canceled => pb::SubscriptionStatus::Canceled,
        }
    }
}

/// What a subscription pays, as it was when it took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub plan: String,
    pub price_minor: i64,
    pub currency: String,
    pub interval: Interval,
}

/// A subscription as its events made it. `tenant_id` is `None` until it is opened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub tenant_id: Option<Uuid>,
    pub price: Option<Price>,
    /// The limits in force (the gateway's `plan_limits_changed`), as protobuf bytes.
    #[serde(with = "limits_bytes")]
    pub limits: pb::PlanLimitsChanged,
    pub status: Status,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// A change waiting for `period_end`: `Some("")` cancels.
    pub scheduled: Option<String>,
    pub billing_email: String,
    /// The payment providers' customers, one per provider, kept for every later checkout.
    pub customers: BTreeMap<String, String>,
    pub past_due_since: Option<DateTime<Utc>>,
    /// Per meter: the window its quota state belongs to (a month, or a day for API calls)
    /// and the thresholds crossed in it.
    #[serde(default)]
    pub quotas: BTreeMap<String, QuotaState>,
    /// Prorations of plan changes in the current period, for its invoice.
    pub accrued: Vec<Line>,
    /// Invoices issued so far (the last one's number).
    pub invoices: u64,
    /// Invoices not paid or voided yet: number → (status, total in minor units).
    pub unpaid: BTreeMap<u64, (InvoiceState, i64)>,
    pub version: u64,
}

/// A meter's quota in its current window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaState {
    pub period_start: DateTime<Utc>,
    /// Percents of the limit crossed in the window.
    pub crossed: BTreeSet<u32>,
}

/// An invoice line as the subscription accrues it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub kind: String,
    pub description: String,
    pub meter: String,
    pub quantity: u64,
    pub amount_minor: i64,
}

impl Line {
    pub fn to_proto(&self) -> pb::InvoiceLine {
        pb::InvoiceLine {
            kind: self.kind.clone(),
            description: self.description.clone(),
            meter: self.meter.clone(),
            quantity: self.quantity,
            amount_minor: self.amount_minor,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    Draft,
    Open,
}

mod limits_bytes {
    use prost::Message;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use tenantry_proto::events::v1::PlanLimitsChanged;

    pub fn serialize<S: Serializer>(v: &PlanLimitsChanged, s: S) -> Result<S::Ok, S::Error> {
        v.encode_to_vec().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PlanLimitsChanged, D::Error> {
        let bytes = Vec::<u8>::deserialize(d)?;
        PlanLimitsChanged::decode(bytes.as_slice()).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone)]
pub enum SubscriptionCommand {
    /// Opens the tenant's subscription on `plan`, trialing until `trial_ends_at` if set.
    Open {
        plan: Plan,
        trial_ends_at: Option<DateTime<Utc>>,
        billing_email: String,
        now: DateTime<Utc>,
    },
    /// `usage`: the current month's usage per meter, to lift quotas the new plan allows.
    ChangePlan {
        to: Plan,
        usage: BTreeMap<String, u64>,
        now: DateTime<Utc>,
    },
    Cancel,
    /// The period ended: its invoice is drafted (the next period's base price in advance,
    /// the closed period's prorations and overage, `usage` being its usage per meter) and a
    /// new period starts, on the scheduled plan (`next`) if any, or the subscription ends.
    ClosePeriod {
        next: Option<Plan>,
        usage: BTreeMap<String, u64>,
        now: DateTime<Utc>,
    },
    /// A draft invoice becomes open (to be collected).
    FinalizeInvoice {
        number: u64,
    },
    VoidInvoice {
        number: u64,
        reason: String,
    },
    LinkCustomer {
        provider: String,
        customer_id: String,
        billing_email: String,
    },
    SetBillingEmail(String),
    PaymentFailed {
        provider: String,
        reference: String,
        now: DateTime<Utc>,
    },
    PaymentSucceeded {
        provider: String,
        reference: String,
        amount_minor: i64,
        currency: String,
        now: DateTime<Utc>,
    },
    /// Suspends a subscription past due for longer than `grace`.
    Suspend {
        grace: Duration,
        now: DateTime<Utc>,
    },
    /// The roll-up saw `used` of `limit` for `meter` in the month starting `period_start`.
    CrossThreshold {
        meter: String,
        percent: u32,
        used: u64,
        limit: u64,
        period_start: DateTime<Utc>,
    },
    /// Quotas crossed in a window that has ended by `now` (a month; a day for API calls)
    /// reset.
    ResetQuotas {
        now: DateTime<Utc>,
    },
}

/// Where the subscription of `tenant_id` lives.
pub fn address(tenant_id: Uuid) -> Result<AggregateAddress, InvalidToken> {
    AggregateAddress::of::<Subscription>(tenant_id.to_string(), tenant_id.to_string())
}

impl Subscription {
    pub fn exists(&self) -> bool {
        self.tenant_id.is_some()
    }

    /// Meters whose quota is used up in their current window.
    pub fn exhausted(&self) -> impl Iterator<Item = &str> {
        self.quotas
            .iter()
            .filter(|(_, q)| q.crossed.iter().any(|p| *p >= 100))
            .map(|(m, _)| m.as_str())
    }

    /// When the earliest window with crossed thresholds ends (its quota resets then).
    pub fn quota_reset_due(&self) -> Option<DateTime<Utc>> {
        self.quotas
            .iter()
            .filter(|(_, q)| !q.crossed.is_empty())
            .map(|(m, q)| Window::of(m).next(q.period_start))
            .min()
    }

    /// The quota of `meter` in force (0: unmetered).
    pub fn limit_of(&self, meter: &str) -> u64 {
        self.limits
            .meters
            .iter()
            .find(|m| m.meter == meter)
            .map_or(0, |m| m.limit)
    }

    pub(super) fn require_open(&self) -> Result<&Price, DomainError> {
        let price = self
            .price
            .as_ref()
            .ok_or_else(|| DomainError::NotFound("subscription".into()))?;
        if self.status == Status::Canceled {
            return Err(DomainError::Precondition(
                "the subscription is canceled".into(),
            ));
        }
        Ok(price)
    }

    fn change_plan(
        &self,
        to: &Plan,
        usage: &BTreeMap<String, u64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SubscriptionEvent>, DomainError> {
        let price = self.require_open()?;
        if to.retired {
            return Err(DomainError::invalid(
                "plan",
                format!("{} is retired", to.name),
            ));
        }
        if to.name == price.plan {
            // Back to the plan it has: a scheduled downgrade or cancellation is called off.
            return Ok(match &self.scheduled {
                Some(_) => vec![SubscriptionEvent::ChangeScheduled(pb::ChangeScheduled {
                    to_plan: price.plan.clone(),
                    effective_at: Some(time::to_proto(self.period_end)),
                })],
                None => vec![],
            });
        }
        if price.price_minor > 0 && to.price_minor > 0 && price.currency != to.currency.code() {
            return Err(DomainError::invalid(
                "plan",
                format!(
                    "{} is priced in {}; this subscription pays in {}",
                    to.name,
                    to.currency.code(),
                    price.currency
                ),
            ));
        }
        let current_monthly = price.price_minor / i64::from(price.interval.months());
        let upgrade = self.status == Status::Trialing || to.monthly_price() > current_monthly;
        if !upgrade {
            return Ok(vec![SubscriptionEvent::ChangeScheduled(
                pb::ChangeScheduled {
                    to_plan: to.name.clone(),
                    effective_at: Some(time::to_proto(self.period_end)),
                },
            )]);
        }
        // At once, prorated by the second: credit what is left of the old period, charge
        // what is left of the new one (which restarts if the interval changes).
        let (start, end) = if to.interval == price.interval {
            (self.period_start, self.period_end)
        } else {
            let start = month_start(now);
            (start, add_months(start, to.interval.months()))
        };
        let left = |s: DateTime<Utc>, e: DateTime<Utc>| {
            ((e - now).num_seconds().max(0), (e - s).num_seconds().max(1))
        };
        let (old_left, old_len) = left(self.period_start, self.period_end);
        let (new_left, new_len) = left(start, end);
        let (credit, charge) = if self.status == Status::Trialing {
            // Leaving the trial: the rest of the period on the new plan, nothing to credit.
            (0, prorate(to.price_minor, new_left, new_len))
        } else {
            (
                prorate(price.price_minor, old_left, old_len),
                prorate(to.price_minor, new_left, new_len),
            )
        };
        let mut events = vec![
            SubscriptionEvent::PlanChanged(plan_changed(
                &price.plan,
                to,
                credit,
                charge,
                now,
                start,
                end,
            )),
            SubscriptionEvent::PlanLimitsChanged(to.limits.clone()),
        ];
        events.extend(self.lifted_quotas(to, usage));
        Ok(events)
    }

    /// Resets of the quotas exhausted now that `to`'s limits are above the month's usage.
    fn lifted_quotas(&self, to: &Plan, usage: &BTreeMap<String, u64>) -> Vec<SubscriptionEvent> {
        self.exhausted()
            .filter(|meter| {
                let used = usage.get(*meter).copied().unwrap_or(0);
                to.quota(meter).is_none_or(|q| used < q.limit)
            })
            .map(|meter| {
                SubscriptionEvent::QuotaReset(pb::QuotaReset {
                    meter: meter.to_owned(),
                    period_start: Some(time::to_proto(self.quotas[meter].period_start)),
                })
            })
            .collect()
    }
}

pub(super) fn plan_changed(
    from: &str,
    to: &Plan,
    credit: i64,
    charge: i64,
    at: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> pb::PlanChanged {
    pb::PlanChanged {
        from_plan: from.to_owned(),
        to_plan: to.name.clone(),
        proration_credit_minor: credit,
        proration_charge_minor: charge,
        currency: to.currency.code().into(),
        effective_at: Some(time::to_proto(at)),
        price_minor: to.price_minor,
        interval: to.interval.to_proto() as i32,
        period_start: Some(time::to_proto(start)),
        period_end: Some(time::to_proto(end)),
    }
}

impl Aggregate for Subscription {
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = DomainError;

    fn decide(&self, command: &SubscriptionCommand) -> Result<Vec<SubscriptionEvent>, DomainError> {
        use SubscriptionCommand as C;
        use SubscriptionEvent as E;
        match command {
            C::Open {
                plan,
                trial_ends_at,
                billing_email,
                now,
            } => {
                if self.exists() {
                    return Ok(vec![]);
                }
                let start = month_start(*now);
                let status = if trial_ends_at.is_some() {
                    Status::Trialing
                } else {
                    Status::Active
                };
                Ok(vec![
                    E::Opened(pb::SubscriptionOpened {
                        plan: plan.name.clone(),
                        status: status.to_proto() as i32,
                        trial_ends_at: trial_ends_at.map(time::to_proto),
                        period_start: Some(time::to_proto(start)),
                        period_end: Some(time::to_proto(add_months(start, plan.interval.months()))),
                        billing_email: billing_email.clone(),
                        price_minor: plan.price_minor,
                        currency: plan.currency.code().into(),
                        interval: plan.interval.to_proto() as i32,
                    }),
                    E::PlanLimitsChanged(plan.limits.clone()),
                ])
            }
            C::ChangePlan { to, usage, now } => self.change_plan(to, usage, *now),
            C::Cancel => {
                self.require_open()?;
                if self.scheduled.as_deref() == Some("") {
                    return Ok(vec![]);
                }
                Ok(vec![E::ChangeScheduled(pb::ChangeScheduled {
                    to_plan: String::new(),
                    effective_at: Some(time::to_proto(self.period_end)),
                })])
            }
            C::ClosePeriod { next, usage, now } => {
                super::invoice::close_period(self, next.as_ref(), usage, *now)
            }
            C::FinalizeInvoice { number } => Ok(match self.unpaid.get(number) {
                Some((InvoiceState::Draft, _)) => {
                    vec![E::InvoiceFinalized(pb::InvoiceFinalized {
                        number: *number,
                    })]
                }
                _ => vec![],
            }),
            C::VoidInvoice { number, reason } => {
                if *number == 0 || *number > self.invoices {
                    return Err(DomainError::NotFound(format!("invoice {number}")));
                }
                Ok(match self.unpaid.contains_key(number) {
                    true => vec![E::InvoiceVoided(pb::InvoiceVoided {
                        number: *number,
                        reason: reason.clone(),
                    })],
                    // Paid or voided already.
                    false => vec![],
                })
            }
            C::LinkCustomer {
                provider,
                customer_id,
                billing_email,
            } => {
                self.require_open()?;
                // One customer per provider, for good: a second checkout reuses it.
                if self.customers.contains_key(provider) {
                    return Ok(vec![]);
                }
                Ok(vec![E::CustomerLinked(pb::CustomerLinked {
                    provider: provider.clone(),
                    customer_id: customer_id.clone(),
                    billing_email: billing_email.clone(),
                })])
            }
            C::SetBillingEmail(email) => {
                self.require_open()?;
                if self.billing_email == *email {
                    return Ok(vec![]);
                }
                Ok(vec![E::BillingEmailChanged(pb::BillingEmailChanged {
                    billing_email: email.clone(),
                })])
            }
            C::PaymentFailed {
                provider,
                reference,
                now,
            } => {
                self.require_open()?;
                if matches!(self.status, Status::PastDue | Status::Suspended) {
                    return Ok(vec![]);
                }
                Ok(vec![E::PaymentFailed(pb::PaymentFailed {
                    provider: provider.clone(),
                    reference: reference.clone(),
                    at: Some(time::to_proto(*now)),
                })])
            }
            C::PaymentSucceeded {
                provider,
                reference,
                amount_minor,
                currency,
                now,
            } => {
                if !self.exists() {
                    return Err(DomainError::NotFound("subscription".into()));
                }
                let mut events = vec![E::PaymentSucceeded(pb::PaymentSucceeded {
                    provider: provider.clone(),
                    reference: reference.clone(),
                    amount_minor: *amount_minor,
                    currency: currency.clone(),
                    at: Some(time::to_proto(*now)),
                })];
                events.extend(
                    super::invoice::settled_by(self, *amount_minor, currency).map(|number| {
                        E::InvoicePaid(pb::InvoicePaid {
                            number,
                            provider: provider.clone(),
                            reference: reference.clone(),
                        })
                    }),
                );
                Ok(events)
            }
            C::Suspend { grace, now } => match (self.status, self.past_due_since) {
                (Status::PastDue, Some(since)) if *now >= since + *grace => {
                    Ok(vec![E::Suspended(pb::SubscriptionSuspended {
                        past_due_since: Some(time::to_proto(since)),
                    })])
                }
                _ => Ok(vec![]),
            },
            C::CrossThreshold {
                meter,
                percent,
                used,
                limit,
                period_start,
            } => {
                // Measured against a limit no longer in force (the plan changed since): the
                // crossing of the new limit, if any, comes on its own.
                let state = self.quotas.get(meter);
                if !self.exists()
                    || self.limit_of(meter) != *limit
                    || state.is_some_and(|q| *period_start < q.period_start)
                    || state.is_some_and(|q| {
                        q.period_start == *period_start && q.crossed.contains(percent)
                    })
                {
                    return Ok(vec![]);
                }
                Ok(vec![E::QuotaThresholdCrossed(pb::QuotaThresholdCrossed {
                    meter: meter.clone(),
                    percent: *percent,
                    period_start: Some(time::to_proto(*period_start)),
                    used: *used,
                    limit: *limit,
                })])
            }
            C::ResetQuotas { now } => Ok(self
                .quotas
                .iter()
                .filter(|(_, q)| !q.crossed.is_empty())
                .filter_map(|(meter, q)| {
                    let window = Window::of(meter);
                    let current = window.start(*now);
                    (current > q.period_start).then(|| {
                        E::QuotaReset(pb::QuotaReset {
                            meter: meter.clone(),
                            period_start: Some(time::to_proto(current)),
                        })
                    })
                })
                .collect()),
        }
    }

    fn evolve(&mut self, event: &SubscriptionEvent, meta: &EventMeta) {
        use SubscriptionEvent as E;
        match event {
            E::Opened(e) => {
                self.tenant_id = Uuid::try_parse(&meta.tenant_id).ok();
                self.price = Some(Price {
                    plan: e.plan.clone(),
                    price_minor: e.price_minor,
                    currency: e.currency.clone(),
                    interval: interval_of(e.interval),
                });
                self.status = if e.status == pb::SubscriptionStatus::Trialing as i32 {
                    Status::Trialing
                } else {
                    Status::Active
                };
                self.trial_ends_at = e.trial_ends_at.as_ref().map(|t| time::from_proto(Some(t)));
                self.period_start = time::from_proto(e.period_start.as_ref());
                self.period_end = time::from_proto(e.period_end.as_ref());
                self.billing_email = e.billing_email.clone();
            }
            E::PlanLimitsChanged(l) => self.limits = l.clone(),
            E::PlanChanged(e) => {
                super::invoice::accrue(self, e);
                self.price = Some(Price {
                    plan: e.to_plan.clone(),
                    price_minor: e.price_minor,
                    currency: e.currency.clone(),
                    interval: interval_of(e.interval),
                });
                if self.status == Status::Trialing {
                    self.status = Status::Active;
                    self.trial_ends_at = None;
                }
                self.period_start = time::from_proto(e.period_start.as_ref());
                self.period_end = time::from_proto(e.period_end.as_ref());
                self.scheduled = None;
            }
            E::ChangeScheduled(e) => {
                let current = self.price.as_ref().map(|p| p.plan.as_str());
                self.scheduled = (Some(e.to_plan.as_str()) != current).then(|| e.to_plan.clone());
            }
            E::PeriodRenewed(e) => {
                self.period_start = time::from_proto(e.period_start.as_ref());
                self.period_end = time::from_proto(e.period_end.as_ref());
            }
            E::Canceled(_) => {
                self.status = Status::Canceled;
                self.scheduled = None;
            }
            E::CustomerLinked(e) => {
                self.customers
                    .insert(e.provider.clone(), e.customer_id.clone());
                if !e.billing_email.is_empty() {
                    self.billing_email = e.billing_email.clone();
                }
            }
            E::BillingEmailChanged(e) => self.billing_email = e.billing_email.clone(),
            E::PaymentFailed(e) => {
                self.status = Status::PastDue;
                self.past_due_since = Some(time::from_proto(e.at.as_ref()));
            }
            E::PaymentSucceeded(_) => {
                if matches!(
                    self.status,
                    Status::PastDue | Status::Suspended | Status::Trialing
                ) {
                    self.status = Status::Active;
                }
                self.past_due_since = None;
            }
            E::Suspended(_) => self.status = Status::Suspended,
            E::InvoiceDrafted(e) => {
                let invoice = e.invoice.clone().unwrap_or_default();
                self.invoices = self.invoices.max(invoice.number);
                self.unpaid
                    .insert(invoice.number, (InvoiceState::Draft, invoice.total_minor));
                self.accrued.clear();
            }
            E::InvoiceFinalized(e) => {
                if let Some(entry) = self.unpaid.get_mut(&e.number) {
                    entry.0 = InvoiceState::Open;
                }
            }
            E::InvoicePaid(e) => {
                self.unpaid.remove(&e.number);
            }
            E::InvoiceVoided(e) => {
                self.unpaid.remove(&e.number);
            }
            E::QuotaThresholdCrossed(e) => {
                let period = time::from_proto(e.period_start.as_ref());
                let quota = self.quotas.entry(e.meter.clone()).or_default();
                if quota.period_start < period {
                    *quota = QuotaState {
                        period_start: period,
                        crossed: BTreeSet::new(),
                    };
                }
                quota.crossed.insert(e.percent);
            }
            E::QuotaReset(e) => {
                let period = time::from_proto(e.period_start.as_ref());
                let quota = self.quotas.entry(e.meter.clone()).or_default();
                quota.crossed.clear();
                quota.period_start = quota.period_start.max(period);
            }
        }
        self.version = meta.position;
    }
}

fn interval_of(v: i32) -> Interval {
    if v == pb::BillingInterval::Yearly as i32 {
        Interval::Yearly
    } else {
        Interval::Monthly
    }
}

#[cfg(test)]
mod tests;
