//! The MercadoLibre connector against a stand-in speaking its OAuth and orders formats: an
//! expired token refreshed (the rotated refresh token kept, sealed), a full then an
//! incremental run with paging, a spent refresh token reported, and `ValidateCredentials`.

mod common;

use common::mercadolibre::{CLIENT_ID, CLIENT_SECRET, MercadoLibre, SELLER};
use common::with_token;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1 as api;
use tenantry_sync::domain::RunOutcome;
use tenantry_sync::runs::{Job, Mode};
use uuid::Uuid;

async fn start(ml: &MercadoLibre) -> common::Harness {
    let api = ml.serve().await;
    common::start_full(
        |c| c.mercadolibre_api_url = api,
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
    )
    .await
}

fn config() -> Option<pb::IntegrationConfig> {
    Some(pb::IntegrationConfig {
        source: Some(pb::integration_config::Source::Mercadolibre(
            pb::MercadoLibreConfig {
                seller_id: SELLER.into(),
            },
        )),
    })
}

fn credentials(extra: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let mut c: std::collections::HashMap<String, String> = [
        ("client_id".to_string(), CLIENT_ID.to_string()),
        ("client_secret".to_string(), CLIENT_SECRET.to_string()),
    ]
    .into();
    c.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    c
}

async fn create(h: &common::Harness, tenant: Uuid, refresh_token: &str) -> String {
    h.client()
        .create_integration(with_token(
            api::CreateIntegrationRequest {
                tenant_id: tenant.to_string(),
                name: "Seller orders".into(),
                r#type: "mercadolibre".into(),
                config: config(),
                schedule: None,
                credentials: credentials(&[("refresh_token", refresh_token)]),
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .integration_id
}

/// The integration's credentials as the log now has them, opened.
async fn stored(
    h: &common::Harness,
    tenant: Uuid,
    id: &str,
) -> std::collections::BTreeMap<String, String> {
    let integration = id.parse().unwrap();
    let (state, _) = h
        .svc
        .integrations
        .load(&tenantry_sync::domain::integration::address(tenant, integration).unwrap())
        .await
        .unwrap();
    let job = Job {
        tenant_id: tenant,
        integration_id: integration,
        run_id: Uuid::now_v7(),
        mode: Mode::Full,
        priority: 5,
    };
    h.svc.runner.credentials(&job, &state).await.unwrap()
}

fn written(outcome: Option<RunOutcome>) -> u64 {
    match outcome {
        Some(RunOutcome::Succeeded { records, .. }) => records,
        other => panic!("expected a success, got {other:?}"),
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_the_rotated_pair_kept_and_orders_paged_in() {
    let ml = MercadoLibre::new("TG-initial");
    for id in 0..60 {
        ml.add(2_000_000_000 + id, id as u32);
    }
    let h = start(&ml).await;
    let tenant = Uuid::now_v7();
    let id = create(&h, tenant, "TG-initial").await;

    // No access token yet: 401, one refresh, then two pages of 50.
    assert_eq!(written(h.run(tenant, &id, Mode::Full).await), 60);
    assert_eq!(ml.refreshes(), 1);
    let offsets: Vec<String> = ml.searches().iter().map(|q| q["offset"].clone()).collect();
    assert_eq!(offsets, vec!["0", "0", "50"]);
    let kept = stored(&h, tenant, &id).await;
    assert_eq!(
        kept["refresh_token"],
        ml.refresh_token(),
        "the rotated refresh token is kept"
    );
    assert!(kept["access_token"].starts_with("APP_USR-1-"));

    // The token expires; new orders: the kept refresh token works, the run is incremental.
    ml.expire();
    ml.add(3_000_000_000, 2000);
    ml.add(3_000_000_001, 2001);
    assert_eq!(written(h.run(tenant, &id, Mode::Incremental).await), 2);
    assert_eq!(ml.refreshes(), 2);
    let last = ml.searches().last().unwrap().clone();
    assert_eq!(
        last["order.date_last_updated.from"],
        "2026-01-01T00:59:00.000-04:00"
    );
    assert_eq!(
        stored(&h, tenant, &id).await["refresh_token"],
        ml.refresh_token()
    );
    let count = tenantry_sync::records::count(&h.svc.pool, tenant, id.parse().unwrap(), "orders")
        .await
        .unwrap();
    assert_eq!(count, 62);
}

#[tokio::test]
async fn a_spent_refresh_token_fails_the_run_in_our_words() {
    let ml = MercadoLibre::new("TG-current");
    ml.add(1, 1);
    let h = start(&ml).await;
    let tenant = Uuid::now_v7();
    let id = create(&h, tenant, "TG-already-spent").await;
    match h.run(tenant, &id, Mode::Full).await {
        Some(RunOutcome::Failed { error }) => assert_eq!(
            error,
            "the source refused to refresh the access token (authorize the integration again)"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn validate_credentials_checks_an_access_token_without_spending_the_refresh_token() {
    let ml = MercadoLibre::new("TG-initial");
    let h = start(&ml).await;
    let tenant = Uuid::now_v7();
    let member = h.token(tenant, Role::Member);
    let validate = |extra: &[(&str, &str)]| api::ValidateCredentialsRequest {
        tenant_id: tenant.to_string(),
        r#type: "mercadolibre".into(),
        config: config(),
        credentials: credentials(extra),
    };
    let bad = h
        .client()
        .validate_credentials(with_token(
            validate(&[
                ("refresh_token", "TG-initial"),
                ("access_token", "APP_USR-expired"),
            ]),
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bad.problems,
        vec!["the source refused the credentials (HTTP 401)"]
    );
    let without = h
        .client()
        .validate_credentials(with_token(
            validate(&[("refresh_token", "TG-initial")]),
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!without.valid);
    assert_eq!(ml.refreshes(), 0, "validation spent no refresh token");
}
