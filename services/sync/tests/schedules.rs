//! Schedules: a due integration gets one incremental run through the `JOBS` queue, counted
//! from its last run, whatever that run's outcome.

mod common;

use std::time::Duration;

use chrono::TimeZone;
use common::source::{Source, TOKEN};
use common::{create_request, with_token};
use tenantry_kit::{ManualClock, Role};
use tenantry_proto::events::v1 as pb;
use uuid::Uuid;

fn every_five_minutes(
    mut r: tenantry_proto::sync::v1::CreateIntegrationRequest,
) -> tenantry_proto::sync::v1::CreateIntegrationRequest {
    r.schedule = Some(pb::Schedule {
        frequency: pb::ScheduleFrequency::Cron as i32,
        cron: "*/5 * * * *".into(),
    });
    r
}

#[tokio::test]
async fn a_due_schedule_queues_one_incremental_run_per_due_time() {
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 2, 0).unwrap());
    let h = common::start_on_clock(clock.clone()).await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let created = h
        .client()
        .create_integration(with_token(
            every_five_minutes(create_request(tenant, &url, TOKEN)),
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap()
        .into_inner();
    let id = created.integration_id.clone();
    h.integration_where(tenant, &id, |_| true).await;

    // 10:02: not due (10:05 is).
    assert_eq!(h.svc.scheduler.queue_due().await.unwrap(), 0);
    clock.advance(chrono::Duration::minutes(3) + chrono::Duration::seconds(30));
    h.integration_where(tenant, &id, |i| i.records_synced == 1)
        .await;
    assert_eq!(source.requests(), vec!["page=1", "page=2"]);
    // Counted from the run: the next is 10:10, and nothing is queued twice meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.svc.scheduler.queue_due().await.unwrap(), 0);
    assert_eq!(source.requests().len(), 2);

    // 10:10: due again, incremental from the cursor.
    source.add(2, "2026-01-02", "two");
    clock.advance(chrono::Duration::minutes(5));
    h.integration_where(tenant, &id, |i| i.records_synced == 2)
        .await;
    assert!(
        source
            .requests()
            .contains(&"page=1&updated_since=2026-01-01".to_string()),
        "{:?}",
        source.requests()
    );
    let status = h
        .client()
        .get_sync_status(with_token(
            tenantry_proto::sync::v1::GetSyncStatusRequest {
                tenant_id: tenant.to_string(),
                min_position: 0,
            },
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    let next = status.integrations[0].next_sync.unwrap();
    assert_eq!(
        next.seconds,
        chrono::Utc
            .with_ymd_and_hms(2026, 3, 1, 10, 15, 0)
            .unwrap()
            .timestamp()
    );
}

#[tokio::test]
async fn a_failing_scheduled_run_is_not_requeued_until_its_next_due_time() {
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 2, 0).unwrap());
    let h = common::start_on_clock(clock.clone()).await;
    let source = Source::default();
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let created = h
        .client()
        .create_integration(with_token(
            every_five_minutes(create_request(tenant, &url, "Bearer wrong")),
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap()
        .into_inner();
    let id = created.integration_id.clone();
    h.integration_where(tenant, &id, |_| true).await;
    clock.advance(chrono::Duration::minutes(4));
    h.integration_where(tenant, &id, |i| i.failure_streak == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(source.requests().len(), 1, "one run for the 10:05 due time");
    clock.advance(chrono::Duration::minutes(5));
    h.integration_where(tenant, &id, |i| i.failure_streak == 2)
        .await;
}

#[tokio::test]
async fn every_integration_due_is_queued_in_one_look_even_past_a_batch() {
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 10, 2, 0).unwrap());
    // The service's own scheduler looks once at start (nothing due) and then not for an hour:
    // the test's look is the only one.
    let h = common::start_clocked(
        |c| c.schedule_tick_ms = 3_600_000,
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
        std::sync::Arc::new(clock.clone()),
    )
    .await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let created = h
            .client()
            .create_integration(with_token(
                every_five_minutes(create_request(tenant, &url, TOKEN)),
                &h.token(tenant, Role::Member),
            ))
            .await
            .unwrap()
            .into_inner();
        h.integration_where(tenant, &created.integration_id, |_| true)
            .await;
        ids.push(created.integration_id);
    }
    let scheduler = tenantry_sync::runs::scheduler::Scheduler {
        batch: 2,
        ..h.svc.scheduler.clone()
    };
    clock.advance(chrono::Duration::minutes(4));
    assert_eq!(
        scheduler.queue_due().await.unwrap(),
        5,
        "three batches, one look"
    );
    assert_eq!(scheduler.queue_due().await.unwrap(), 0, "each queued once");
    for id in &ids {
        h.integration_where(tenant, id, |i| i.records_synced == 1)
            .await;
    }
}
