//! The Google Ads connector against a stand-in speaking Google's OAuth and `searchStream`
//! formats: a token at each run and again when it expires mid-run, a full then an incremental
//! run, and bad credentials reported by `ValidateCredentials`.

mod common;

use chrono::TimeZone;
use common::google::{CLIENT_ID, CLIENT_SECRET, CUSTOMER, DEVELOPER_TOKEN, Google, REFRESH_TOKEN};
use common::with_token;
use tenantry_kit::{ManualClock, Role};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1 as api;
use tenantry_sync::domain::RunOutcome;
use tenantry_sync::runs::Mode;
use uuid::Uuid;

async fn start(google: &Google, clock: ManualClock) -> common::Harness {
    let (ads, token) = google.serve().await;
    common::start_clocked(
        |c| {
            c.google_ads_api_url = ads;
            c.google_token_url = token;
        },
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
        std::sync::Arc::new(clock),
    )
    .await
}

fn config() -> Option<pb::IntegrationConfig> {
    Some(pb::IntegrationConfig {
        source: Some(pb::integration_config::Source::GoogleAds(
            pb::GoogleAdsConfig {
                customer_id: CUSTOMER.into(),
                login_customer_id: String::new(),
            },
        )),
    })
}

fn credentials(refresh_token: &str) -> std::collections::HashMap<String, String> {
    [
        ("developer_token", DEVELOPER_TOKEN),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("refresh_token", refresh_token),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn written(outcome: Option<RunOutcome>) -> u64 {
    match outcome {
        Some(RunOutcome::Succeeded { records, .. }) => records,
        other => panic!("expected a success, got {other:?}"),
    }
}

#[tokio::test]
async fn runs_get_a_token_refresh_it_when_it_expires_and_read_campaign_days() {
    let google = Google::default();
    for campaign in [111, 222, 333] {
        for day in 1..=10 {
            google.set(campaign, &format!("2026-03-{day:02}"), 5);
        }
    }
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());
    let h = start(&google, clock.clone()).await;
    let tenant = Uuid::now_v7();
    let id = h
        .client()
        .create_integration(with_token(
            api::CreateIntegrationRequest {
                tenant_id: tenant.to_string(),
                name: "Ads".into(),
                r#type: "google_ads".into(),
                config: config(),
                schedule: None,
                credentials: credentials(REFRESH_TOKEN),
            },
            &h.token(tenant, Role::Member),
        ))
        .await
        .unwrap()
        .into_inner()
        .integration_id;

    assert_eq!(written(h.run(tenant, &id, Mode::Full).await), 30);
    assert_eq!(google.refreshes(), 1);
    assert!(google.queries()[0].contains("BETWEEN '2025-12-10' AND '2026-03-10'"));

    // A day later, the token found expired mid-run: a second token, the run goes on.
    clock.advance(chrono::Duration::days(1));
    google.set(111, "2026-03-10", 50);
    google.set(111, "2026-03-11", 1);
    google.expire_next();
    assert_eq!(written(h.run(tenant, &id, Mode::Incremental).await), 2);
    assert_eq!(
        google.refreshes(),
        3,
        "one at the run's start, one after the 401"
    );
    assert!(
        google
            .queries()
            .last()
            .unwrap()
            .contains("BETWEEN '2026-03-10' AND '2026-03-11'")
    );
    let i = h
        .integration_where(tenant, &id, |i| i.records_synced == 32)
        .await;
    assert_eq!(i.cursors["campaign_metrics"], "2026-03-11");
}

#[tokio::test]
async fn validate_credentials_reports_a_refused_refresh_token() {
    let google = Google::default();
    let h = start(&google, ManualClock::new(chrono::Utc::now())).await;
    let tenant = Uuid::now_v7();
    let member = h.token(tenant, Role::Member);
    let validate = |refresh: &str| api::ValidateCredentialsRequest {
        tenant_id: tenant.to_string(),
        r#type: "google_ads".into(),
        config: config(),
        credentials: credentials(refresh),
    };
    let good = h
        .client()
        .validate_credentials(with_token(validate(REFRESH_TOKEN), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(good.valid, "{:?}", good.problems);
    let bad = h
        .client()
        .validate_credentials(with_token(validate("1//revoked"), &member))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bad.problems,
        vec!["the source refused to refresh the access token (authorize the integration again)"]
    );
}
