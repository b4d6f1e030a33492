//! The VTEX connector against a stand-in speaking the OMS list-orders format: a full then an
//! incremental run with paging, 429 with `Retry-After`, and bad credentials reported by
//! `ValidateCredentials`.

mod common;

use std::time::{Duration, Instant};

use common::vtex::{APP_KEY, APP_TOKEN, Vtex};
use common::with_token;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1 as api;
use tenantry_sync::domain::RunOutcome;
use tenantry_sync::runs::Mode;
use uuid::Uuid;

async fn start(vtex: &Vtex) -> common::Harness {
    let (_, base) = vtex.serve().await;
    common::start_full(
        |c| c.vtex_base_url = base,
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
    )
    .await
}

fn config() -> Option<pb::IntegrationConfig> {
    Some(pb::IntegrationConfig {
        source: Some(pb::integration_config::Source::Vtex(pb::VtexConfig {
            account_name: "chelseaio".into(),
            environment: String::new(),
        })),
    })
}

fn credentials(token: &str) -> std::collections::HashMap<String, String> {
    [
        ("app_key".to_string(), APP_KEY.to_string()),
        ("app_token".to_string(), token.to_string()),
    ]
    .into()
}

async fn create(h: &common::Harness, tenant: Uuid) -> String {
    h.client()
        .create_integration(with_token(
            api::CreateIntegrationRequest {
                tenant_id: tenant.to_string(),
                name: "Chelsea VTEX".into(),
                r#type: "vtex".into(),
                config: config(),
                schedule: None,
                credentials: credentials(APP_TOKEN),
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .integration_id
}

fn written(outcome: Option<RunOutcome>) -> u64 {
    match outcome {
        Some(RunOutcome::Succeeded { records, .. }) => records,
        other => panic!("expected a success, got {other:?}"),
    }
}

async fn orders(h: &common::Harness, tenant: Uuid, id: &str) -> i64 {
    tenantry_sync::records::count(&h.svc.pool, tenant, id.parse().unwrap(), "orders")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_then_an_incremental_run_pages_through_the_orders() {
    let vtex = Vtex::default();
    for n in 0..205 {
        vtex.add(n, i64::from(n));
    }
    let h = start(&vtex).await;
    let tenant = Uuid::now_v7();
    let id = create(&h, tenant).await;

    assert_eq!(written(h.run(tenant, &id, Mode::Full).await), 205);
    assert_eq!(orders(&h, tenant, &id).await, 205);
    let pages: Vec<String> = vtex.requests().iter().map(|q| q["page"].clone()).collect();
    assert_eq!(pages, vec!["1", "2", "3"]);
    assert!(vtex.requests().iter().all(|q| q["per_page"] == "100"));
    let i = h
        .integration_where(tenant, &id, |i| i.records_synced == 205)
        .await;
    let cursor = i.cursors["orders"].clone();
    assert!(cursor.starts_with("2026-01-01T03:24:00"), "{cursor}");

    // Two new orders: the incremental run asks from the cursor and writes only them.
    vtex.add(205, 300);
    vtex.add(206, 301);
    assert_eq!(written(h.run(tenant, &id, Mode::Incremental).await), 2);
    assert_eq!(orders(&h, tenant, &id).await, 207);
    let last = vtex.requests().last().unwrap().clone();
    assert!(
        last["f_creationDate"].starts_with(&format!("creationDate:[{cursor} TO ")),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured() {
    let vtex = Vtex::default();
    vtex.add(1, 1);
    vtex.rate_limit(1);
    let h = start(&vtex).await;
    let tenant = Uuid::now_v7();
    let id = create(&h, tenant).await;
    let started = Instant::now();
    assert_eq!(written(h.run(tenant, &id, Mode::Full).await), 1);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(vtex.requests().len(), 2);
}

#[tokio::test]
async fn validate_credentials_reports_bad_credentials() {
    let vtex = Vtex::default();
    let h = start(&vtex).await;
    let tenant = Uuid::now_v7();
    let validate = |token: &str| api::ValidateCredentialsRequest {
        tenant_id: tenant.to_string(),
        r#type: "vtex".into(),
        config: config(),
        credentials: credentials(token),
    };
    let member = h.token(tenant, Role::Member);
    let good = h
        .client()
        .validate_credentials(with_token(validate(APP_TOKEN), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(good.valid, "{:?}", good.problems);
    let bad = h
        .client()
        .validate_credentials(with_token(validate("wrong"), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(!bad.valid);
    assert_eq!(
        bad.problems,
        vec!["the source refused the credentials (HTTP 401)"]
    );
    // One cheap call each: one order per page.
    assert!(vtex.requests().iter().all(|q| q["per_page"] == "1"));
    assert_eq!(vtex.requests().len(), 2);
}
