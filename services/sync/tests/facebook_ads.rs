//! The Facebook Ads connector against a stand-in speaking the Graph API's insights format:
//! a full run paging by cursor, an incremental run from the cursor's day, and a bad token
//! reported by `ValidateCredentials`.

mod common;

use chrono::TimeZone;
use common::facebook::{ACCOUNT, Graph, TOKEN};
use common::with_token;
use tenantry_kit::{ManualClock, Role};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1 as api;
use tenantry_sync::domain::RunOutcome;
use tenantry_sync::runs::Mode;
use uuid::Uuid;

async fn start(graph: &Graph, clock: ManualClock) -> common::Harness {
    let url = graph.serve().await;
    common::start_clocked(
        |c| c.facebook_graph_url = url,
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
        std::sync::Arc::new(clock),
    )
    .await
}

fn config() -> Option<pb::IntegrationConfig> {
    Some(pb::IntegrationConfig {
        source: Some(pb::integration_config::Source::FacebookAds(
            pb::FacebookAdsConfig {
                ad_account_id: ACCOUNT.into(),
            },
        )),
    })
}

fn written(outcome: Option<RunOutcome>) -> u64 {
    match outcome {
        Some(RunOutcome::Succeeded { records, .. }) => records,
        other => panic!("expected a success, got {other:?}"),
    }
}

fn day(n: i64) -> String {
    (chrono::NaiveDate::from_ymd_opt(2026, 1, 20).unwrap() + chrono::Duration::days(n)).to_string()
}

#[tokio::test]
async fn a_full_run_pages_by_cursor_and_an_incremental_one_starts_at_the_cursors_day() {
    let graph = Graph::default();
    // Five ads over 50 days (2026-01-20 to 2026-03-10): 250 rows, three pages of 100.
    for ad in 1..=5 {
        for n in 0..50 {
            graph.set(&format!("2385{ad}"), &day(n), 10);
        }
    }
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
    let h = start(&graph, clock.clone()).await;
    let tenant = Uuid::now_v7();
    let id = h
        .client()
        .create_integration(with_token(
            api::CreateIntegrationRequest {
                tenant_id: tenant.to_string(),
                name: "Ads".into(),
                r#type: "facebook_ads".into(),
                config: config(),
                schedule: None,
                credentials: [("access_token".to_string(), TOKEN.to_string())].into(),
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .integration_id;

    assert_eq!(written(h.run(tenant, &id, Mode::Full).await), 250);
    let afters: Vec<Option<String>> = graph
        .requests()
        .iter()
        .map(|q| q.get("after").cloned())
        .collect();
    assert_eq!(
        afters,
        vec![None, Some("cursor-100".into()), Some("cursor-200".into())]
    );
    assert!(graph.requests()[0]["time_range"].contains(r#""since":"2025-12-10""#));
    let i = h
        .integration_where(tenant, &id, |i| i.records_synced == 250)
        .await;
    assert_eq!(i.cursors["ad_insights"], "2026-03-10");

    // A day later: yesterday's figures changed for one ad, today's rows are new.
    clock.advance(chrono::Duration::days(1));
    graph.set("23851", "2026-03-10", 99);
    for ad in 1..=5 {
        graph.set(&format!("2385{ad}"), "2026-03-11", 1);
    }
    assert_eq!(written(h.run(tenant, &id, Mode::Incremental).await), 6);
    let last = graph.requests().last().unwrap().clone();
    assert_eq!(
        last["time_range"],
        r#"{"since":"2026-03-10","until":"2026-03-11"}"#
    );
    let count =
        tenantry_sync::records::count(&h.svc.pool, tenant, id.parse().unwrap(), "ad_insights")
            .await
            .unwrap();
    assert_eq!(count, 255);
}

#[tokio::test]
async fn validate_credentials_reports_a_bad_token() {
    let graph = Graph::default();
    let h = start(&graph, ManualClock::new(chrono::Utc::now())).await;
    let tenant = Uuid::now_v7();
    let member = h.token(tenant, Role::Member);
    let validate = |token: &str| api::ValidateCredentialsRequest {
        tenant_id: tenant.to_string(),
        r#type: "facebook_ads".into(),
        config: config(),
        credentials: [("access_token".to_string(), token.to_string())].into(),
    };
    let good = h
        .client()
        .validate_credentials(with_token(validate(TOKEN), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(good.valid, "{:?}", good.problems);
    let bad = h
        .client()
        .validate_credentials(with_token(validate("EAAB-expired"), &member))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bad.problems,
        vec!["the source refused the credentials (HTTP 400)"]
    );
    assert!(
        !format!("{bad:?}").contains("Cannot parse"),
        "Graph's message is not reflected"
    );
}
