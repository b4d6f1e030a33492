use chrono::TimeZone;
use tenantry_kit::gwt::given;

use super::*;
use crate::domain::plan::default_catalog;

fn plan(name: &str) -> Plan {
    default_catalog()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, h, 0, 0).unwrap()
}

fn open(name: &str, trial: bool) -> SubscriptionCommand {
    SubscriptionCommand::Open {
        plan: plan(name),
        trial_ends_at: trial.then(|| at(31, 0)),
        billing_email: "billing@a.example".into(),
        now: at(1, 0),
    }
}

fn opened(name: &str) -> tenantry_kit::gwt::Given<Subscription> {
    given::<Subscription>([])
        .when(open(name, false))
        .then_state()
}

#[test]
fn opening_twice_opens_once_and_publishes_the_limits() {
    let g = given::<Subscription>([])
        .when(open("trial", true))
        .then_state();
    let s = g.state();
    assert_eq!(s.status, Status::Trialing);
    assert_eq!(s.limits.plan, "trial");
    assert_eq!(s.period_start, at(1, 0));
    assert_eq!(
        s.period_end,
        Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()
    );
    g.when(open("trial", true)).then_nothing();
}

#[test]
fn an_upgrade_takes_effect_at_once_prorated_by_the_second() {
    // Half of January (31 days) left at 16 Jan 12:00 → credit and charge of half a month.
    let now = Utc.with_ymd_and_hms(2026, 1, 16, 12, 0, 0).unwrap();
    let events = opened("business")
        .when(SubscriptionCommand::ChangePlan {
            to: plan("enterprise"),
            usage: BTreeMap::new(),
            now,
        })
        .then_events();
    let SubscriptionEvent::PlanChanged(c) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(c.proration_credit_minor, 49_900 / 2);
    assert_eq!(c.proration_charge_minor, 299_900 / 2);
    assert_eq!(c.currency, "BRL");
    assert!(
        matches!(&events[1], SubscriptionEvent::PlanLimitsChanged(l) if l.plan == "enterprise")
    );
}

#[test]
fn a_downgrade_waits_for_the_period_end_then_renews_on_the_new_plan() {
    let g = opened("enterprise")
        .when(SubscriptionCommand::ChangePlan {
            to: plan("business"),
            usage: BTreeMap::new(),
            now: at(10, 0),
        })
        .then_state();
    assert_eq!(g.state().scheduled.as_deref(), Some("business"));
    assert_eq!(g.state().price.as_ref().unwrap().plan, "enterprise");
    // Not before the period ends.
    g.when(SubscriptionCommand::ClosePeriod {
        next: Some(plan("business")),
        usage: BTreeMap::new(),
        now: at(31, 23),
    })
    .then_nothing();
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let g = g
        .when(SubscriptionCommand::ClosePeriod {
            next: Some(plan("business")),
            usage: BTreeMap::new(),
            now: feb,
        })
        .then_state();
    let s = g.state();
    assert_eq!(s.price.as_ref().unwrap().plan, "business");
    assert_eq!(s.limits.plan, "business");
    assert_eq!(s.period_start, feb);
    assert_eq!(s.scheduled, None);
}

#[test]
fn cancel_ends_the_subscription_at_the_period_end() {
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let g = opened("business")
        .when(SubscriptionCommand::Cancel)
        .then_state()
        .when(SubscriptionCommand::ClosePeriod {
            next: None,
            usage: BTreeMap::new(),
            now: feb,
        })
        .then_state();
    assert_eq!(g.state().status, Status::Canceled);
    let err = g
        .when(SubscriptionCommand::ChangePlan {
            to: plan("enterprise"),
            usage: BTreeMap::new(),
            now: feb,
        })
        .then_rejected();
    assert!(matches!(err, DomainError::Precondition(_)), "{err:?}");
}

#[test]
fn a_plan_in_another_currency_is_refused_naming_the_plan() {
    let mut usd = plan("enterprise");
    usd.name = "enterprise-usd".into();
    usd.currency = crate::domain::money::Currency::USD;
    let err = opened("business")
        .when(SubscriptionCommand::ChangePlan {
            to: usd,
            usage: BTreeMap::new(),
            now: at(2, 0),
        })
        .then_rejected();
    assert!(
        matches!(err, DomainError::Invalid { field: "plan", .. }),
        "{err:?}"
    );
}

fn cross(percent: u32, used: u64, period: DateTime<Utc>) -> SubscriptionCommand {
    SubscriptionCommand::CrossThreshold {
        meter: "requests".into(),
        percent,
        used,
        limit: 300_000,
        period_start: period,
    }
}

#[test]
fn each_threshold_is_crossed_once_per_period_and_reset_by_the_next() {
    let jan = at(1, 0);
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let g = opened("business")
        .when(cross(80, 240_000, jan))
        .then_state();
    let g = g.when(cross(80, 250_000, jan)).then_nothing();
    let g = g.when(cross(100, 300_000, jan)).then_state();
    assert_eq!(g.state().exhausted().collect::<Vec<_>>(), ["requests"]);
    // An older period's crossing arriving late changes nothing.
    let g = g.when(SubscriptionCommand::ResetQuotas { now: feb }).then([
        SubscriptionEvent::QuotaReset(pb::QuotaReset {
            meter: "requests".into(),
            period_start: Some(time::to_proto(feb)),
        }),
    ]);
    assert_eq!(g.state().exhausted().count(), 0);
    let g = g.when(cross(100, 300_000, jan)).then_nothing();
    // Nor does one measured against a limit no longer in force.
    let mut stale = cross(100, 300_000, feb);
    if let SubscriptionCommand::CrossThreshold { limit, .. } = &mut stale {
        *limit = 1000;
    }
    let g = g.when(stale).then_nothing();
    g.when(SubscriptionCommand::ResetQuotas { now: feb })
        .then_nothing();
}

#[test]
fn an_upgrade_lifts_the_quotas_the_new_plan_allows() {
    let jan = at(1, 0);
    let g = opened("business")
        .when(cross(100, 300_000, jan))
        .then_state();
    let usage = BTreeMap::from([("requests".to_owned(), 300_000)]);
    let events = g
        .when(SubscriptionCommand::ChangePlan {
            to: plan("enterprise"),
            usage,
            now: at(2, 0),
        })
        .then_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::QuotaReset(r) if r.meter == "requests")),
        "{events:?}"
    );
}

#[test]
fn past_due_beyond_the_grace_is_suspended_and_a_payment_reactivates() {
    let grace = Duration::days(3);
    let failed = SubscriptionCommand::PaymentFailed {
        provider: "stripe".into(),
        reference: "in_1".into(),
        now: at(5, 0),
    };
    let g = opened("business").when(failed.clone()).then_state();
    assert_eq!(g.state().status, Status::PastDue);
    g.when(failed).then_nothing();
    let g = g
        .when(SubscriptionCommand::Suspend {
            grace,
            now: at(7, 23),
        })
        .then_nothing()
        .when(SubscriptionCommand::Suspend {
            grace,
            now: at(8, 0),
        })
        .then_state();
    assert_eq!(g.state().status, Status::Suspended);
    let g = g
        .when(SubscriptionCommand::PaymentSucceeded {
            provider: "stripe".into(),
            reference: "in_1".into(),
            amount_minor: 49_900,
            currency: "BRL".into(),
            now: at(9, 0),
        })
        .then_state();
    assert_eq!(g.state().status, Status::Active);
    assert_eq!(g.state().past_due_since, None);
}

#[test]
fn a_provider_customer_is_linked_once() {
    let link = |id: &str| SubscriptionCommand::LinkCustomer {
        provider: "stripe".into(),
        customer_id: id.into(),
        billing_email: String::new(),
    };
    let g = opened("trial").when(link("cus_1")).then_state();
    let g = g.when(link("cus_2")).then_nothing();
    assert_eq!(g.state().customers["stripe"], "cus_1");
}

fn invoices(events: &[SubscriptionEvent]) -> Vec<pb::Invoice> {
    events
        .iter()
        .filter_map(|e| match e {
            SubscriptionEvent::InvoiceDrafted(d) => d.invoice.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn a_closed_period_is_invoiced_base_in_advance_prorations_and_overage_in_arrears() {
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let mid = Utc.with_ymd_and_hms(2026, 1, 16, 12, 0, 0).unwrap();
    // Business (R$ 499,00, 300,000 requests, R$ 1,00 per 1,000 over) upgraded mid-January
    // to enterprise, then downgraded back: January's invoice carries both prorations.
    let g = opened("business")
        .when(SubscriptionCommand::ChangePlan {
            to: plan("enterprise"),
            usage: BTreeMap::new(),
            now: mid,
        })
        .then_state();
    let usage = BTreeMap::from([("requests".to_owned(), 3_001_500)]);
    let events = g
        .when(SubscriptionCommand::ClosePeriod {
            next: None,
            usage,
            now: feb,
        })
        .then_events();
    let invoice = &invoices(&events)[0];
    assert_eq!(invoice.number, 1);
    assert_eq!(invoice.currency, "BRL");
    let amounts: Vec<(&str, i64)> = invoice
        .lines
        .iter()
        .map(|l| (l.kind.as_str(), l.amount_minor))
        .collect();
    assert_eq!(
        amounts,
        [
            ("base", 299_900),
            ("proration", -49_900 / 2),
            ("proration", 299_900 / 2),
            // Enterprise includes 3,000,000: 1,500 over → 2 started thousands × R$ 0,50.
            ("overage", 100),
        ]
    );
    assert_eq!(
        invoice.total_minor,
        amounts.iter().map(|(_, a)| a).sum::<i64>()
    );
    assert!(matches!(
        events.last(),
        Some(SubscriptionEvent::PeriodRenewed(_))
    ));
}

#[test]
fn invoices_are_numbered_finalized_paid_oldest_first_or_voided() {
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    let mar = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let close = |now| SubscriptionCommand::ClosePeriod {
        next: None,
        usage: BTreeMap::new(),
        now,
    };
    let g = opened("business")
        .when(close(feb))
        .then_state()
        .when(close(mar))
        .then_state();
    assert_eq!(g.state().invoices, 2);
    let g = g
        .when(SubscriptionCommand::FinalizeInvoice { number: 1 })
        .then([SubscriptionEvent::InvoiceFinalized(pb::InvoiceFinalized {
            number: 1,
        })]);
    g.when(SubscriptionCommand::FinalizeInvoice { number: 1 })
        .then_nothing();
    // One month's price pays the oldest invoice only.
    let paid = g.when(SubscriptionCommand::PaymentSucceeded {
        provider: "stripe".into(),
        reference: "in_1".into(),
        amount_minor: 49_900,
        currency: "BRL".into(),
        now: mar,
    });
    let events = paid.then_events();
    assert!(
        matches!(&events[1], SubscriptionEvent::InvoicePaid(p) if p.number == 1),
        "{events:?}"
    );
    assert_eq!(events.len(), 2);
    let g = paid.then_state();
    assert_eq!(g.state().unpaid.keys().collect::<Vec<_>>(), [&2]);
    let g = g
        .when(SubscriptionCommand::VoidInvoice {
            number: 2,
            reason: "goodwill".into(),
        })
        .then_state();
    assert!(g.state().unpaid.is_empty());
    let err = g
        .when(SubscriptionCommand::VoidInvoice {
            number: 9,
            reason: String::new(),
        })
        .then_rejected();
    assert!(matches!(err, DomainError::NotFound(_)));
}

#[test]
fn a_trial_covering_the_start_of_a_period_prorates_its_base() {
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    // Trial until 31 Jan 00:00 (from `open`): February is billed whole; a trial until
    // mid-February would bill half of it.
    let mut open_mid_feb = open("business", true);
    if let SubscriptionCommand::Open { trial_ends_at, .. } = &mut open_mid_feb {
        *trial_ends_at = Some(Utc.with_ymd_and_hms(2026, 2, 15, 0, 0, 0).unwrap());
    }
    let events = given::<Subscription>([])
        .when(open_mid_feb)
        .then_state()
        .when(SubscriptionCommand::ClosePeriod {
            next: None,
            usage: BTreeMap::new(),
            now: feb,
        })
        .then_events();
    assert_eq!(invoices(&events)[0].lines[0].amount_minor, 49_900 / 2);
}

#[test]
fn api_calls_reset_every_day_and_other_meters_every_month() {
    let mut p = plan("business");
    p.limits.meters.push(pb::MeterQuota {
        meter: "api_calls".into(),
        limit: 10_000,
        behaviour: pb::QuotaBehaviour::BlockTraffic as i32,
        ..Default::default()
    });
    let jan = at(1, 0);
    let day = at(5, 0);
    let g = given::<Subscription>([])
        .when(SubscriptionCommand::Open {
            plan: p,
            trial_ends_at: None,
            billing_email: String::new(),
            now: jan,
        })
        .then_state()
        .when(cross(100, 300_000, jan))
        .then_state()
        .when(SubscriptionCommand::CrossThreshold {
            meter: "api_calls".into(),
            percent: 100,
            used: 10_000,
            limit: 10_000,
            period_start: day,
        })
        .then_state();
    assert_eq!(
        g.state().exhausted().collect::<Vec<_>>(),
        ["api_calls", "requests"]
    );
    assert_eq!(g.state().quota_reset_due(), Some(at(6, 0)));
    // The next day: API calls reset, the month's requests stay used up.
    let g = g
        .when(SubscriptionCommand::ResetQuotas { now: at(6, 1) })
        .then([SubscriptionEvent::QuotaReset(pb::QuotaReset {
            meter: "api_calls".into(),
            period_start: Some(time::to_proto(at(6, 0))),
        })]);
    assert_eq!(g.state().exhausted().collect::<Vec<_>>(), ["requests"]);
    let feb = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
    assert_eq!(g.state().quota_reset_due(), Some(feb));
}
