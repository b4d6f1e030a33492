//! Webhooks: a delivery with the integration's secret starts an incremental run within
//! seconds; a forged one (wrong secret, another integration's secret, no secret, an unknown
//! integration) changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::source::{Source, TOKEN};
use uuid::Uuid;

async fn post(h: &common::Harness, integration: &str, secret: Option<&str>) -> u16 {
    tenantry_kit::install_crypto();
    let mut request =
        reqwest::Client::new().post(format!("http://{}/webhooks/sync/{integration}", h.svc.addr));
    if let Some(secret) = secret {
        request = request.header("X-Tenantry-Webhook-Secret", secret);
    }
    request
        .body(r#"{"Domain":"Marketplace","OrderId":"v1-01","State":"ready-for-handling"}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_delivery_with_the_secret_brings_the_records_in_and_forgeries_change_nothing() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    source.add(2, "2026-01-02", "two");
    let (_, url) = source.serve().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let ours = h.create_http_json(a, &url, TOKEN).await;
    let theirs = h.create_http_json(b, &url, TOKEN).await;
    let id = ours.integration_id.as_str();
    h.integration_where(a, id, |_| true).await;
    h.integration_where(b, &theirs.integration_id, |_| true)
        .await;

    // Forgeries first: none of them reaches the source or writes a record.
    assert_eq!(post(&h, id, Some("not-the-secret")).await, 401);
    assert_eq!(
        post(&h, id, Some(&theirs.webhook_secret)).await,
        401,
        "B's secret on A's integration"
    );
    assert_eq!(post(&h, id, None).await, 401);
    assert_eq!(
        post(&h, &Uuid::now_v7().to_string(), Some(&ours.webhook_secret)).await,
        401
    );
    assert_eq!(
        post(&h, "not-a-uuid", Some(&ours.webhook_secret)).await,
        401
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        source.requests().is_empty(),
        "a forged delivery started a run"
    );
    assert_eq!(h.records(a, id).await, 0);

    // The real one: records queryable within seconds.
    let sent = Instant::now();
    assert_eq!(post(&h, id, Some(&ours.webhook_secret)).await, 202);
    tenantry_testkit::eventually("the records", Duration::from_secs(10), || async {
        (h.records(a, id).await == 2).then_some(())
    })
    .await;
    eprintln!("webhook to records queryable: {:?}", sent.elapsed());
    // B's integration did not run.
    assert_eq!(h.records(b, &theirs.integration_id).await, 0);
}
