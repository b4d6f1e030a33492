//! The tenant's daily API budget from its plan (90% alerts, 100% stops runs until the next
//! day) and the alerts: storage at 80% of the plan, a sync 6 h late, failure streaks.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use common::source::{Source, TOKEN};
use common::{Harness, create_request, with_token};
use tenantry_contracts::billing::SubscriptionEvent;
use tenantry_kit::{ManualClock, Role};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1 as api;
use tenantry_sync::domain::RunOutcome;
use tenantry_sync::domain::integration::{DISABLE_AFTER, WARN_AFTER};
use tenantry_sync::runs::Mode;
use uuid::Uuid;

/// Billing's plan limits for `tenant` (as billing appends them); returns once sync has them.
async fn plan(h: &Harness, tenant: Uuid, limits: pb::PlanLimitsChanged) {
    let store = h.env.event_store().await;
    let id = tenant.to_string();
    let position = tenantry_testkit::append(
        &store,
        &id,
        &id,
        SubscriptionEvent::PlanLimitsChanged(limits),
    )
    .await
    .unwrap();
    assert!(
        h.svc.plans.applied(position, Duration::from_secs(10)).await,
        "the plan directory applied position {position}"
    );
}

/// An `http_json` integration of `tenant` that runs only when told.
async fn manual_integration(h: &Harness, tenant: Uuid, url: &str, auth: &str) -> String {
    let mut request = create_request(tenant, url, auth);
    request.schedule = Some(pb::Schedule {
        frequency: pb::ScheduleFrequency::Manual as i32,
        cron: String::new(),
    });
    let created = h
        .client()
        .create_integration(with_token(request, &h.token(tenant, Role::Member)))
        .await
        .unwrap()
        .into_inner();
    h.integration_where(tenant, &created.integration_id, |_| true)
        .await;
    created.integration_id
}

async fn alerts(h: &Harness, tenant: Uuid) -> Vec<api::Alert> {
    h.client()
        .list_alerts(with_token(
            api::ListAlertsRequest {
                tenant_id: tenant.to_string(),
                min_position: 0,
            },
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .alerts
}

/// The tenant's alerts once `check` holds for them.
async fn alerts_where(
    h: &Harness,
    tenant: Uuid,
    check: impl Fn(&[api::Alert]) -> bool,
) -> Vec<api::Alert> {
    tenantry_testkit::eventually("the alerts", Duration::from_secs(10), || async {
        let list = alerts(h, tenant).await;
        check(&list).then_some(list)
    })
    .await
}

fn kinds(alerts: &[api::Alert], kind: &str) -> usize {
    alerts.iter().filter(|a| a.kind == kind).count()
}

async fn budget(h: &Harness, tenant: Uuid) -> api::ApiBudget {
    h.client()
        .get_sync_status(with_token(
            api::GetSyncStatusRequest {
                tenant_id: tenant.to_string(),
                min_position: 0,
            },
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner()
        .api_budget
        .unwrap()
}

#[tokio::test]
async fn the_api_budget_alerts_at_90_percent_and_stops_runs_at_100_until_the_next_day() {
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap());
    let h = common::start_on_clock(clock.clone()).await;
    let source = Source::default();
    // 15 pages of two items: more calls than the budget.
    for id in 1..=30 {
        source.add(id, &format!("2026-01-{:02}", id), &format!("item {id}"));
    }
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    plan(
        &h,
        tenant,
        pb::PlanLimitsChanged {
            plan: "business".into(),
            api_calls_per_day: 10,
            ..Default::default()
        },
    )
    .await;
    let id = manual_integration(&h, tenant, &url, TOKEN).await;

    // The 9th call reaches 90%: an alert; the 11th is refused (never made): the run stops.
    let outcome = h.run(tenant, &id, Mode::Full).await;
    let Some(RunOutcome::BudgetExhausted { error }) = outcome else {
        panic!("expected a budget stop, got {outcome:?}")
    };
    assert!(
        error.contains("daily API budget (10 calls) is spent"),
        "{error}"
    );
    assert_eq!(source.requests().len(), 10, "ten calls made, none after");
    assert_eq!(h.records(tenant, &id).await, 20, "what was read is kept");
    let listed = alerts_where(&h, tenant, |a| kinds(a, "api_budget_90") == 1).await;
    assert!(
        listed[0].message.contains("of the plan's 10 API calls"),
        "{listed:?}"
    );
    let state = h
        .integration_where(tenant, &id, |i| i.last_error.contains("budget"))
        .await;
    assert_eq!(state.failure_streak, 0, "a budget stop is not a failure");
    assert!(state.enabled);
    let spent = budget(&h, tenant).await;
    assert_eq!((spent.used, spent.limit), (10, 10));
    assert_eq!(spent.day, "2026-03-01");

    // Later the same day: stopped at once, no call.
    clock.advance(chrono::Duration::hours(3));
    let again = h.run(tenant, &id, Mode::Incremental).await;
    assert!(
        matches!(again, Some(RunOutcome::BudgetExhausted { .. })),
        "{again:?}"
    );
    assert_eq!(source.requests().len(), 10);

    // The next day: a new budget; the run reads on (and the alert is not raised again until
    // 90% of the new day).
    clock.advance(chrono::Duration::hours(12));
    let resumed = h.run(tenant, &id, Mode::Full).await;
    assert!(
        matches!(resumed, Some(RunOutcome::BudgetExhausted { .. })),
        "the full run of 16 calls is still more than a day's 10: {resumed:?}"
    );
    assert_eq!(source.requests().len(), 20);
    assert_eq!(budget(&h, tenant).await.day, "2026-03-02");
    alerts_where(&h, tenant, |a| kinds(a, "api_budget_90") == 2).await;
    // An incremental run from the saved cursor fits: none was saved by stopped runs, so raise
    // the plan instead and see the run finish.
    plan(
        &h,
        tenant,
        pb::PlanLimitsChanged {
            plan: "enterprise".into(),
            api_calls_per_day: 100,
            ..Default::default()
        },
    )
    .await;
    let done = h.run(tenant, &id, Mode::Full).await;
    assert!(
        matches!(done, Some(RunOutcome::Succeeded { .. })),
        "{done:?}"
    );
    assert_eq!(h.records(tenant, &id).await, 30);
}

#[tokio::test]
async fn storage_at_80_percent_of_the_plan_alerts_once() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let id = manual_integration(&h, tenant, &url, TOKEN).await;
    // One record of about 50 bytes; the plan holds 100.
    plan(
        &h,
        tenant,
        pb::PlanLimitsChanged {
            plan: "trial".into(),
            storage_bytes: 100,
            ..Default::default()
        },
    )
    .await;
    h.run(tenant, &id, Mode::Full).await;
    let bytes = tenantry_sync::records::stored_bytes(&h.svc.pool, tenant)
        .await
        .unwrap();
    assert!(bytes < 80, "one record is under 80% ({bytes} bytes)");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kinds(&alerts(&h, tenant).await, "storage_80"), 0);

    source.add(2, "2026-01-02", "two");
    h.run(tenant, &id, Mode::Incremental).await;
    let listed = alerts_where(&h, tenant, |a| kinds(a, "storage_80") == 1).await;
    assert!(
        listed[0].message.contains("of the plan's 100 bytes"),
        "{listed:?}"
    );
    source.add(3, "2026-01-03", "three");
    h.run(tenant, &id, Mode::Incremental).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kinds(&alerts(&h, tenant).await, "storage_80"), 1, "once");
}

#[tokio::test]
async fn a_sync_six_hours_late_alerts_once_per_due_time() {
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap());
    // The scheduler's own loop looks once, at start; the test drives it.
    let h = common::start_clocked(
        |c| c.schedule_tick_ms = 3_600_000,
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
        Arc::new(clock.clone()),
    )
    .await;
    let tenant = Uuid::now_v7();
    // Hourly: due at 11:00.
    let created = h
        .create_http_json(tenant, "http://127.0.0.1:9/v1/items", TOKEN)
        .await;
    let id = created.integration_id;
    h.integration_where(tenant, &id, |_| true).await;

    clock.advance(chrono::Duration::hours(6) + chrono::Duration::minutes(59));
    assert_eq!(
        h.svc.scheduler.alert_late().await.unwrap(),
        0,
        "5 h 59 late"
    );
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(h.svc.scheduler.alert_late().await.unwrap(), 1, "6 h late");
    let listed = alerts_where(&h, tenant, |a| kinds(a, "sync_late") == 1).await;
    assert_eq!(listed[0].integration_id, id);
    assert!(
        listed[0].message.contains("2026-03-01T11:00:00"),
        "{listed:?}"
    );
    // The same due time does not alert twice.
    assert_eq!(h.svc.scheduler.alert_late().await.unwrap(), 0);
    clock.advance(chrono::Duration::hours(1));
    assert_eq!(h.svc.scheduler.alert_late().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kinds(&alerts(&h, tenant).await, "sync_late"), 1);
    // Another tenant sees none of it.
    assert!(alerts(&h, Uuid::now_v7()).await.is_empty());
}

#[tokio::test]
async fn a_failure_streak_alerts_at_20_and_when_it_disables_the_integration_at_30() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let id = manual_integration(&h, tenant, &url, "Bearer wrong").await;
    for _ in 0..WARN_AFTER {
        h.run(tenant, &id, Mode::Incremental).await;
    }
    let listed = alerts_where(&h, tenant, |a| kinds(a, "failure_streak") == 1).await;
    assert_eq!(listed[0].message, "failed 20 times in a row");
    assert_eq!(kinds(&listed, "disabled"), 0);
    for _ in WARN_AFTER..DISABLE_AFTER {
        h.run(tenant, &id, Mode::Incremental).await;
    }
    let listed = alerts_where(&h, tenant, |a| kinds(a, "disabled") == 1).await;
    assert_eq!(kinds(&listed, "failure_streak"), 1);
    assert!(listed[0].message.contains("failed 30 times in a row"));
    // Newest first.
    assert_eq!(listed[0].kind, "disabled");
}
