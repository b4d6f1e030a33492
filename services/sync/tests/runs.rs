//! Runs of the `http_json` connector against a local stand-in: full then incremental, paging,
//! upserts that a re-run leaves unchanged, 429 with `Retry-After`, metering to `USAGE`, and
//! the outbound policy in front of every call.

mod common;

use std::time::{Duration, Instant};

use common::source::{Source, TOKEN};
use tenantry_kit::Role;
use tenantry_kit::db::{Scope, scoped_tx};
use tenantry_proto::events::v1 as pb;
use tenantry_sync::domain::RunOutcome;
use tenantry_sync::runs::Mode;
use uuid::Uuid;

fn written(outcome: Option<RunOutcome>) -> (u64, u64) {
    match outcome {
        Some(RunOutcome::Succeeded { records, bytes, .. }) => (records, bytes),
        other => panic!("expected a success, got {other:?}"),
    }
}

fn failure(outcome: Option<RunOutcome>) -> String {
    match outcome {
        Some(RunOutcome::Failed { error }) => error,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_then_incremental_run_pages_upserts_and_meters_once() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    for (id, updated) in [
        (1, "2026-01-01"),
        (2, "2026-01-02"),
        (3, "2026-01-03"),
        (4, "2026-01-04"),
        (5, "2026-01-05"),
    ] {
        source.add(id, updated, &format!("item {id}"));
    }
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let created = h.create_http_json(tenant, &url, TOKEN).await;
    let id = created.integration_id.as_str();

    // Full: three pages of two, then an empty one.
    let (records, bytes) = written(h.run(tenant, id, Mode::Full).await);
    assert_eq!(records, 5);
    assert!(bytes > 0);
    assert_eq!(h.records(tenant, id).await, 5);
    assert_eq!(
        source.requests(),
        vec!["page=1", "page=2", "page=3", "page=4"]
    );
    let integration = h
        .integration_where(tenant, id, |i| i.records_synced == 5)
        .await;
    assert_eq!(integration.cursors["items"], "2026-01-05");

    // Incremental: from the cursor; one item changed, one new.
    source.add(2, "2026-01-06", "item 2 renamed");
    source.add(6, "2026-01-07", "item 6");
    let (records, _) = written(h.run(tenant, id, Mode::Incremental).await);
    assert_eq!(records, 2);
    assert_eq!(h.records(tenant, id).await, 6);
    assert!(
        source
            .requests()
            .contains(&"page=1&updated_since=2026-01-05".to_string()),
        "{:?}",
        source.requests()
    );

    // A full re-run of unchanged data writes (and meters) nothing.
    let (records, bytes) = written(h.run(tenant, id, Mode::Full).await);
    assert_eq!((records, bytes), (0, 0));
    assert_eq!(h.records(tenant, id).await, 6);

    // A full run where one record of a page changed: only it is replaced.
    source.add(3, "2026-01-08", "item 3 renamed, and longer");
    let (records, _) = written(h.run(tenant, id, Mode::Full).await);
    assert_eq!(records, 1);

    // The tenant's stored bytes, kept by the upserts (a record replaced counts its new size
    // only), are what its records hold.
    let mut tx = scoped_tx(&h.svc.pool, Scope::Tenant(tenant)).await.unwrap();
    let summed: i64 =
        sqlx::query_scalar("SELECT SUM(bytes)::bigint FROM records WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    let kept = tenantry_sync::records::stored_bytes(&h.svc.pool, tenant)
        .await
        .unwrap();
    assert_eq!(kept, u64::try_from(summed).unwrap());

    // Usage: records 5 + 2 + 1, in reports billing counts once each.
    h.svc.usage.publish_pending().await.unwrap();
    let reports = h.usage_reports(tenant).await;
    let sum = |meter: &str| -> u64 {
        reports
            .iter()
            .filter(|(m, _)| m == meter)
            .map(|(_, q)| q)
            .sum()
    };
    assert_eq!(sum("records"), 8);
    assert!(sum("storage") > 0);
    // Published again (a crash before marking): nothing new reaches the stream.
    assert_eq!(h.svc.usage.publish_pending().await.unwrap(), 0);
    assert_eq!(h.usage_reports(tenant).await.len(), reports.len());
}

#[tokio::test]
async fn a_known_page_size_ends_paging_at_a_short_page() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default(); // pages of two
    for id in 1..=3 {
        source.add(id, &format!("2026-01-0{id}"), &format!("item {id}"));
    }
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let mut request = common::create_request(tenant, &url, TOKEN);
    if let Some(pb::integration_config::Source::HttpJson(c)) =
        request.config.as_mut().and_then(|c| c.source.as_mut())
    {
        c.page_size = 2;
    }
    let id = h
        .client()
        .create_integration(common::with_token(request, &h.token(tenant, Role::Member)))
        .await
        .unwrap()
        .into_inner()
        .integration_id;

    // Page 2 holds one item, fewer than two: the last page, and no call spent on a third.
    let (records, _) = written(h.run(tenant, &id, Mode::Full).await);
    assert_eq!(records, 3);
    assert_eq!(source.requests(), vec!["page=1", "page=2"]);

    // A full page is not the last: with four items, page 3 is asked and comes back empty.
    source.add(4, "2026-01-04", "item 4");
    let (records, _) = written(h.run(tenant, &id, Mode::Full).await);
    assert_eq!(records, 1);
    assert_eq!(
        source.requests()[2..],
        ["page=1", "page=2", "page=3"].map(String::from)
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    source.rate_limit(1, "1");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let id = h.create_http_json(tenant, &url, TOKEN).await.integration_id;
    let started = Instant::now();
    let (records, _) = written(h.run(tenant, &id, Mode::Full).await);
    assert_eq!(records, 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited out Retry-After"
    );
    // The 429 and its retry, then page 2 (empty).
    assert_eq!(source.requests(), vec!["page=1", "page=1", "page=2"]);
}

#[tokio::test]
async fn bad_credentials_fail_the_run_in_our_words() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let id = h
        .create_http_json(tenant, &url, "Bearer wrong")
        .await
        .integration_id;
    let error = failure(h.run(tenant, &id, Mode::Full).await);
    assert_eq!(error, "the source answered HTTP 401");
    assert!(
        !error.contains("who are you"),
        "the source's body is never reflected"
    );
    let i = h
        .integration_where(tenant, &id, |i| i.failure_streak == 1)
        .await;
    assert_eq!(i.last_error, "the source answered HTTP 401");
}

#[tokio::test]
async fn the_outbound_policy_refuses_loopback_internal_addresses_and_redirects() {
    // The default policy: loopback (and every private range) refused.
    let h = common::start().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (addr, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let id = h.create_http_json(tenant, &url, TOKEN).await.integration_id;
    assert_eq!(
        failure(h.run(tenant, &id, Mode::Full).await),
        "the source's address is refused by the outbound policy"
    );
    assert!(
        source.requests().is_empty(),
        "nothing reached the loopback server"
    );
    for internal in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/items",
        "http://[::1]:9/items",
        "http://localhost:5432/",
    ] {
        let id = h
            .create_http_json(tenant, internal, TOKEN)
            .await
            .integration_id;
        assert_eq!(
            failure(h.run(tenant, &id, Mode::Full).await),
            "the source's address is refused by the outbound policy",
            "{internal}"
        );
    }

    // Loopback allowed for the stand-in: a redirect to the metadata address is not followed.
    let h = common::start_allowing_loopback().await;
    let id = h
        .create_http_json(tenant, &format!("http://{addr}/redirect"), TOKEN)
        .await
        .integration_id;
    let error = failure(h.run(tenant, &id, Mode::Full).await);
    assert!(
        error.starts_with("the source could not be reached"),
        "{error}"
    );
    assert!(error.contains("redirect"), "{error}");
}

#[tokio::test]
async fn every_tenant_table_has_forced_rls_and_records_stay_with_their_tenant() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let id = h.create_http_json(a, &url, TOKEN).await.integration_id;
    written(h.run(a, &id, Mode::Full).await);
    assert_eq!(h.records(a, &id).await, 1);
    // B's scope sees none of A's rows, in any table, even asking by A's ids.
    let mut tx = tenantry_kit::db::scoped_tx(&h.svc.pool, tenantry_kit::db::Scope::Tenant(b))
        .await
        .unwrap();
    // A's run counted its calls in `api_budget`.
    for table in [
        "records",
        "integrations",
        "data_keys",
        "usage_outbox",
        "api_budget",
        "alerts",
        "alert_marks",
        "tenant_storage",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(a)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    drop(tx);
    let admin = h.env.admin_pool().await;
    let tables: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT relname::text, relrowsecurity, relforcerowsecurity FROM pg_class
         WHERE relnamespace = $1::regnamespace AND relkind = 'r'
           AND relname NOT IN ('_sqlx_migrations', 'projection_checkpoints', 'projection_quarantine')
         ORDER BY relname",
    )
    .bind(h.env.schema("sync"))
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(tables.len(), 9, "{tables:?}");
    for (table, enabled, forced) in tables {
        assert!(
            enabled && forced,
            "{table}: RLS enabled {enabled}, forced {forced}"
        );
    }
}

#[tokio::test]
async fn a_worker_killed_mid_run_leaves_the_job_to_another_and_nothing_is_duplicated_or_lost() {
    let h = common::start_full(
        |c| c.job_ack_wait_secs = 2,
        |common| {
            common.egress_allow = "127.0.0.0/8".parse().unwrap();
        },
    )
    .await;
    let source = Source::default();
    for (id, updated) in [
        (1, "2026-01-01"),
        (2, "2026-01-02"),
        (3, "2026-01-03"),
        (4, "2026-01-04"),
    ] {
        source.add(id, updated, &format!("item {id}"));
    }
    source.hang_on_page(Some(2));
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let id = h.create_http_json(tenant, &url, TOKEN).await.integration_id;
    let job = tenantry_sync::runs::Job {
        tenant_id: tenant,
        integration_id: id.parse().unwrap(),
        run_id: Uuid::now_v7(),
        mode: Mode::Full,
        priority: 5,
    };
    job.enqueue(&h.env.event_store().await).await.unwrap();
    // Page 1 stored, page 2 hanging: the worker dies.
    tenantry_testkit::eventually("page 1", Duration::from_secs(10), || async {
        (h.records(tenant, &id).await == 2).then_some(())
    })
    .await;
    h.svc.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another worker takes the job after ack_wait and finishes it.
    source.hang_on_page(None);
    let mut config = tenantry_sync::SyncConfig::ephemeral(h.master_key.clone());
    config.job_ack_wait_secs = 2;
    let mut common = h.env.common();
    common.egress_allow = "127.0.0.0/8".parse().unwrap();
    let other = h
        .env
        .start_with(
            &common,
            tenantry_sync::SyncService {
                config,
                clock: std::sync::Arc::new(tenantry_kit::SystemClock),
            },
        )
        .await;
    tenantry_testkit::eventually(
        "the run, finished by the other worker",
        Duration::from_secs(20),
        || async {
            let (state, _) = other
                .integrations
                .load(
                    &tenantry_sync::domain::integration::address(tenant, id.parse().unwrap())
                        .unwrap(),
                )
                .await
                .unwrap();
            (state.last_run_id == job.run_id.to_string()).then_some(())
        },
    )
    .await;
    let records = tenantry_sync::records::count(&other.pool, tenant, id.parse().unwrap(), "items")
        .await
        .unwrap();
    assert_eq!(records, 4, "none lost, none twice");
    let (state, _) = other
        .integrations
        .load(&tenantry_sync::domain::integration::address(tenant, id.parse().unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        state.records_synced, 2,
        "the second attempt wrote only page 2's records"
    );
    assert_eq!(state.cursors["items"], "2026-01-04");
    // Page 1 was asked twice (once per attempt).
    assert_eq!(
        source.requests().iter().filter(|r| *r == "page=1").count(),
        2
    );
}

#[tokio::test]
async fn a_tenant_runs_at_most_its_share_at_once_and_others_still_run() {
    let h = common::start_full(
        |c| {
            c.tenant_concurrency = 1;
            c.worker_concurrency = 4;
        },
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
    )
    .await;
    let (busy, other) = (Source::default(), Source::default());
    for s in [&busy, &other] {
        s.add(1, "2026-01-01", "one");
        s.delay(200);
    }
    let (_, busy_url) = busy.serve().await;
    let (_, other_url) = other.serve().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let store = h.env.event_store().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push((
            a,
            h.create_http_json(a, &busy_url, TOKEN).await.integration_id,
        ));
    }
    ids.push((
        b,
        h.create_http_json(b, &other_url, TOKEN)
            .await
            .integration_id,
    ));
    for (tenant, id) in &ids {
        tenantry_sync::runs::Job {
            tenant_id: *tenant,
            integration_id: id.parse().unwrap(),
            run_id: Uuid::now_v7(),
            mode: Mode::Full,
            priority: 5,
        }
        .enqueue(&store)
        .await
        .unwrap();
    }
    // Every run recorded (not only its records stored: its last page asked too).
    for (tenant, id) in &ids {
        h.integration_where(*tenant, id, |i| i.records_synced == 1)
            .await;
    }
    assert_eq!(
        busy.max_in_flight(),
        1,
        "tenant A's three runs went one at a time"
    );
    assert_eq!(busy.requests().len(), 6);
    assert_eq!(other.requests().len(), 2);
}
