//! The quota loop inside billing: usage reports become period totals exactly once, and each
//! threshold (80, 90, 100%) of a limit becomes one `quota_threshold_crossed` per period.

mod common;

use std::time::Duration;

use common::{plan, start};
use tenantry_billing::domain::period::{add_months, month_start};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_eventstore::AggregateAddress;
use tenantry_proto::events::v1 as pb;
use tenantry_testkit::eventually;
use uuid::Uuid;

/// The subscription's quota events so far, in log order.
async fn quota_events(h: &common::Harness, tenant: Uuid) -> Vec<(String, String, u32)> {
    let store = h.env.event_store().await;
    let address =
        AggregateAddress::for_events::<SubscriptionEvent>(tenant.to_string(), tenant.to_string())
            .unwrap();
    let messages = store.read_aggregate(&address, 0).await.unwrap();
    let mut out = Vec::new();
    for m in messages {
        for e in m.events::<SubscriptionEvent>().unwrap() {
            match e.event {
                SubscriptionEvent::QuotaThresholdCrossed(c) => {
                    out.push(("crossed".into(), c.meter, c.percent))
                }
                SubscriptionEvent::QuotaReset(r) => out.push(("reset".into(), r.meter, 0)),
                _ => {}
            }
        }
    }
    out
}

#[tokio::test]
async fn each_threshold_is_crossed_once_and_reports_count_once() {
    let h = start().await;
    h.define(plan("tiny", 1_000, 1_000, pb::QuotaBehaviour::BlockTraffic))
        .await;
    h.define(plan(
        "roomy",
        5_000,
        100_000,
        pb::QuotaBehaviour::BlockTraffic,
    ))
    .await;
    let (tenant, subscription) = h.tenant(pb::TenantType::Business).await;
    assert_eq!(subscription.plan, "business");
    h.change_plan(tenant, "tiny").await.unwrap();

    // 12 reports of 100 requests: 80% at the 8th, 90% at the 9th, 100% at the 10th.
    for seq in 1..=12 {
        h.report(tenant, "gw-a", seq, 100).await;
    }
    eventually("three crossings", Duration::from_secs(10), || async {
        let events = quota_events(&h, tenant).await;
        (events.len() >= 3).then_some(())
    })
    .await;
    // Every report published again (the gateway retrying), and the same sequences with new
    // message ids (past the stream's deduplication window): nothing more is counted.
    for seq in 1..=12 {
        h.report(tenant, "gw-a", seq, 100).await;
        h.report_as(tenant, "gw-a", seq, 100, &format!("replayed-{seq}"))
            .await;
    }
    let store = h.env.event_store().await;
    let usage_last = store
        .jetstream()
        .get_stream(&store.names().usage_stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    h.svc
        .usage_positions
        .wait_for(usage_last, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(h.used(tenant, "requests").await, 1_200);
    assert_eq!(h.used(tenant, "bytes").await, 1_200 * 110);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        quota_events(&h, tenant).await,
        [
            ("crossed".into(), "requests".into(), 80),
            ("crossed".into(), "requests".into(), 90),
            ("crossed".into(), "requests".into(), 100),
        ]
    );
    let alerts = h.alerts(tenant).await;
    assert_eq!(alerts.len(), 3);
    assert_eq!(alerts[0].percent, 100);
    assert_eq!(alerts[0].limit, 1_000);

    // An upgrade whose limit is above the month's usage lifts the block at once.
    h.change_plan(tenant, "roomy").await.unwrap();
    assert_eq!(
        quota_events(&h, tenant).await.last().unwrap(),
        &("reset".to_owned(), "requests".to_owned(), 0)
    );

    // Another reporter's reports count on their own.
    h.report(tenant, "gw-b", 1, 50).await;
    eventually("gw-b's report", Duration::from_secs(10), || async {
        (h.used(tenant, "requests").await == 1_250).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_new_month_resets_the_quotas_crossed_in_the_last() {
    let h = start().await;
    h.define(plan("tiny", 1_000, 100, pb::QuotaBehaviour::BlockTraffic))
        .await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    h.change_plan(tenant, "tiny").await.unwrap();
    h.report(tenant, "gw-a", 1, 150).await;
    eventually("the crossings", Duration::from_secs(10), || async {
        (quota_events(&h, tenant).await.len() == 3).then_some(())
    })
    .await;
    let next = add_months(month_start(h.clock.now()), 1);
    h.clock
        .advance(next - h.clock.now() + chrono::Duration::seconds(1));
    eventually("the reset", Duration::from_secs(10), || async {
        let events = quota_events(&h, tenant).await;
        (events.last().map(|e| e.0.as_str()) == Some("reset")).then_some(events)
    })
    .await;
    // Once: the dispatcher's next rounds find nothing more to reset.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(quota_events(&h, tenant).await.len(), 4);
}

use tenantry_kit::Clock as _;

#[tokio::test]
async fn each_alert_is_e_mailed_once_with_the_upgrade_notice() {
    let smtp = tenantry_testkit::fakes::smtp::FakeSmtp::start().await;
    let relay = smtp.addr().to_string();
    let h = common::start_with(move |c| c.mail.relay = relay).await;
    h.define(plan("tiny", 1_000, 100, pb::QuotaBehaviour::AlertOnly))
        .await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    h.change_plan(tenant, "tiny").await.unwrap();
    h.client()
        .set_billing_email(common::with_token(
            tenantry_proto::billing::v1::SetBillingEmailRequest {
                tenant_id: tenant.to_string(),
                billing_email: "finance@acme.example".into(),
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap();
    // A bad address is refused naming the field.
    let err = h
        .client()
        .set_billing_email(common::with_token(
            tenantry_proto::billing::v1::SetBillingEmailRequest {
                tenant_id: tenant.to_string(),
                billing_email: "finance@acme.example\r\nBcc: all@evil.example".into(),
            },
            &h.owner(tenant),
        ))
        .await
        .unwrap_err();
    assert!(err.message().starts_with("billing_email"), "{err:?}");
    h.subscription_where(tenant, |s| s.billing_email == "finance@acme.example")
        .await;

    h.report(tenant, "gw-a", 1, 85).await;
    h.report(tenant, "gw-a", 2, 10).await;
    h.report(tenant, "gw-a", 3, 10).await;
    let mails = eventually("three alert e-mails", Duration::from_secs(10), || async {
        let mails = smtp.received().await;
        (mails.len() >= 3).then_some(mails)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().await.len(), 3, "each alert once");
    assert!(
        mails
            .iter()
            .all(|m| m.recipients == ["finance@acme.example"])
    );
    let last = &mails[2];
    assert!(
        last.header("Subject").unwrap().contains("reached"),
        "{:?}",
        last.header("Subject")
    );
    assert!(
        last.body().contains("Notificação para upgrade"),
        "{}",
        last.body()
    );
    assert!(last.body().contains("tiny"));
}

#[tokio::test]
async fn api_calls_are_a_daily_quota_reset_the_next_day() {
    let h = start().await;
    let mut daily = plan("daily", 1_000, 1_000_000, pb::QuotaBehaviour::AlertOnly);
    daily.limits.as_mut().unwrap().api_calls_per_day = 100;
    daily.limits.as_mut().unwrap().quota_behaviour = pb::QuotaBehaviour::BlockTraffic as i32;
    h.define(daily).await;
    let (tenant, _) = h.tenant(pb::TenantType::Trial).await;
    h.change_plan(tenant, "daily").await.unwrap();
    h.report(tenant, "gw-a", 1, 120).await;
    eventually("the day's crossings", Duration::from_secs(10), || async {
        let events = quota_events(&h, tenant).await;
        (events.len() == 3).then_some(())
    })
    .await;
    assert_eq!(
        quota_events(&h, tenant).await,
        [
            ("crossed".into(), "api_calls".into(), 80),
            ("crossed".into(), "api_calls".into(), 90),
            ("crossed".into(), "api_calls".into(), 100),
        ]
    );
    assert_eq!(h.used(tenant, "api_calls").await, 120);
    // The next day (UTC) the daily quota resets; the month's requests go on counting.
    let tomorrow =
        tenantry_billing::domain::period::day_start(h.clock.now()) + chrono::Duration::days(1);
    h.clock
        .advance(tomorrow - h.clock.now() + chrono::Duration::seconds(1));
    eventually("the daily reset", Duration::from_secs(10), || async {
        let events = quota_events(&h, tenant).await;
        (events.last() == Some(&("reset".to_owned(), "api_calls".to_owned(), 0))).then_some(())
    })
    .await;
    assert_eq!(
        h.used(tenant, "api_calls").await,
        0,
        "a new day counts from zero"
    );
    if month_start(tomorrow) == month_start(tomorrow - chrono::Duration::days(1)) {
        assert_eq!(h.used(tenant, "requests").await, 120, "the month goes on");
    }
}
