//! Exactly once under failure: billing's database connections killed in the middle of its
//! batches and the service stopped and started again halfway, with every report published
//! twice (once under its own message id, which JetStream drops, once under another, which the
//! roll-up's marks drop): every tenant's total is exact.

mod common;

use std::time::{Duration, Instant};

use common::{start_on, with_token};
use tenantry_kit::ManualClock;
use tenantry_proto::billing::v1 as api;
use tenantry_proto::events::v1 as pb;

const TENANTS: usize = 20;
const REPORTS: u64 = 100;

#[tokio::test]
async fn totals_are_exact_after_crashes_mid_batch_and_duplicated_reports() {
    let h = common::start().await;
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        tenants.push(h.tenant(pb::TenantType::Business).await.0);
    }
    // Reports published before billing rolls them up (the service is stopped first, so the
    // roll-up meets them as one backlog of many batches).
    h.svc.stop();
    for seq in 1..=REPORTS {
        for (i, tenant) in tenants.iter().enumerate() {
            let n = (i as u64 % 7) + seq % 5 + 1;
            h.report(*tenant, "gw-a", seq, n).await;
            h.report(*tenant, "gw-a", seq, n).await;
            h.report_as(*tenant, "gw-a", seq, n, &format!("again-{tenant}-{seq}"))
                .await;
        }
    }
    let expected = |i: usize| {
        (1..=REPORTS)
            .map(|seq| (i as u64 % 7) + seq % 5 + 1)
            .sum::<u64>()
    };
    let store = h.env.event_store().await;
    let last = store
        .jetstream()
        .get_stream(&store.names().usage_stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;

    // Billing again, its connections killed while it works, and then restarted.
    let clock = ManualClock::new(chrono::Utc::now());
    let mut svc = start_on(&h.env, &clock).await;
    let admin = h.env.admin_pool().await;
    let schema = h.env.schema("billing");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut kills = 0;
    let mut restarted = false;
    loop {
        let at = svc.usage_positions.current();
        if at >= last && restarted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the roll-up stalled at {at} of {last}"
        );
        // Restarted once, after the first kills (or once it is done: the new runner must then
        // find nothing left to count).
        if !restarted && (kills >= 2 || at >= last) {
            svc.stop();
            let _ = (&mut svc.task).await;
            svc = start_on(&h.env, &clock).await;
            restarted = true;
            continue;
        }
        if kills >= 6 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'tenantry_' || $1 AND state = 'idle in transaction'
                OR application_name = 'tenantry_' || $1 AND state = 'active'",
        )
        .bind(&schema)
        .fetch_all(&admin)
        .await
        .unwrap();
        kills += killed.len();
        // Long enough for a batch to start again (the runner backs off after a failure).
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    eprintln!("{kills} connections killed mid-work, restarted: {restarted}");
    assert!(restarted);

    let channel = tenantry_testkit::channel(svc.addr).await;
    let client =
        tenantry_proto::billing::v1::billing_service_client::BillingServiceClient::new(channel);
    for (i, tenant) in tenants.iter().enumerate() {
        let used = tenantry_testkit::eventually("the total", Duration::from_secs(10), || {
            let mut client = client.clone();
            let token = h.env.token(Some(*tenant), tenantry_kit::Role::Viewer);
            async move {
                client
                    .get_usage(with_token(
                        api::GetUsageRequest {
                            tenant_id: tenant.to_string(),
                        },
                        &token,
                    ))
                    .await
                    .ok()
                    .map(|r| r.into_inner().meters)
            }
        })
        .await
        .into_iter()
        .find(|m| m.meter == "requests")
        .map_or(0, |m| m.used);
        assert_eq!(used, expected(i), "tenant {i}");
    }
}

/// A duplicate published after its original was counted (under another message id, as after
/// JetStream's deduplication window) is dropped by the mark the roll-up keeps in memory, and
/// after a restart by the mark it reads back from Postgres; the reporter's next report counts.
#[tokio::test]
async fn late_duplicates_are_dropped_by_marks_in_memory_and_after_a_restart() {
    let mut h = common::start().await;
    let (tenant, _) = h.tenant(pb::TenantType::Business).await;
    async fn counted(h: &common::Harness, tenant: uuid::Uuid, want: u64) {
        tenantry_testkit::eventually("the total", Duration::from_secs(10), || async {
            (h.used(tenant, "requests").await == want).then_some(())
        })
        .await;
    }

    h.report(tenant, "gw-a", 1, 5).await;
    counted(&h, tenant, 5).await;
    h.report_as(tenant, "gw-a", 1, 5, "late-1").await;
    h.report(tenant, "gw-a", 2, 7).await;
    counted(&h, tenant, 12).await;

    h.svc.stop();
    let _ = (&mut h.svc.task).await;
    h.svc = start_on(&h.env, &h.clock).await;
    h.channel = tenantry_testkit::channel(h.svc.addr).await;
    h.report_as(tenant, "gw-a", 2, 7, "late-2").await;
    h.report_as(tenant, "gw-a", 1, 5, "late-1-again").await;
    h.report(tenant, "gw-a", 3, 1).await;
    counted(&h, tenant, 13).await;
    // Another reporter's sequence is its own.
    h.report(tenant, "gw-b", 1, 100).await;
    counted(&h, tenant, 113).await;
}
