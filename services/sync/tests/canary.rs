//! Secrets canary: unique credentials go in through the API and are used against their
//! sources (MercadoLibre's tokens refreshed and rotated during a run), then are looked for in
//! the clear in the API's answers, the event log and the other streams, a dump of sync's
//! Postgres schema, and the logs: found nowhere.

mod common;

use std::io::Write;
#[allow(clippy::disallowed_types)]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use common::source::Source;
use common::with_token;
use futures::StreamExt;
use tenantry_eventstore::StreamKind;
use tenantry_kit::Role;
use tenantry_proto::sync::v1 as api;
use uuid::Uuid;

/// Everything logged in this test binary. A `Write` for tracing is synchronous: a std mutex,
/// held only for the copy.
#[allow(clippy::disallowed_types)]
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every message of `kind`'s stream in this test's world, raw.
async fn stream_bytes(h: &common::Harness, kind: StreamKind) -> Vec<u8> {
    let store = h.env.event_store().await;
    let names = store.names().clone();
    let (stream, root) = names.of(kind);
    let mut stream = store.jetstream().get_stream(stream).await.unwrap();
    if kind == StreamKind::Jobs {
        // A work queue takes no second consumer: what is left in it, read by sequence.
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.extend_from_slice(m.subject.as_bytes());
                out.extend_from_slice(&m.payload);
            }
        }
        return out;
    }
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: format!("{root}.>"),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = consumer.cached_info().num_pending as usize;
    let mut out = Vec::new();
    if pending == 0 {
        return out;
    }
    let mut messages = consumer
        .fetch()
        .max_messages(pending)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    while let Some(Ok(m)) = messages.next().await {
        out.extend_from_slice(m.subject.as_bytes());
        out.extend_from_slice(&m.payload);
    }
    out
}

#[tokio::test]
async fn a_credential_is_in_no_answer_event_stream_table_or_log() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    // MercadoLibre's refresh tokens rotate: the first and the ones issued later are looked for too.
    let first_refresh = format!("TG-canary-{}", Uuid::new_v4().simple());
    let ml = common::mercadolibre::MercadoLibre::new(&first_refresh);
    ml.add(1, 1);
    let ml_api = ml.serve().await;
    let h = common::start_full(
        |c| c.mercadolibre_api_url = ml_api,
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
    )
    .await;
    let canary = format!("Bearer canary-{}", Uuid::new_v4().simple());
    let source = Source::default();
    source.expect_token(&canary);
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let member = h.token(tenant, Role::Member);
    let mut answers = String::new();

    let created = h.create_http_json(tenant, &url, &canary).await;
    answers += &format!("{created:?}");
    let id = created.integration_id.clone();
    let validated = h
        .client()
        .validate_credentials(with_token(
            api::ValidateCredentialsRequest {
                tenant_id: tenant.to_string(),
                r#type: "http_json".into(),
                config: common::create_request(tenant, &url, "x").config,
                credentials: [("auth_value".to_string(), canary.clone())].into(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(validated.valid, "the canary is the right credential");
    answers += &format!("{validated:?}");
    h.integration_where(tenant, &id, |_| true).await;
    answers += &format!(
        "{:?}",
        h.client()
            .trigger_sync(with_token(
                api::TriggerSyncRequest {
                    tenant_id: tenant.to_string(),
                    integration_id: id.clone(),
                    mode: "full".into(),
                    priority: 0,
                    ..Default::default()
                },
                &member,
            ))
            .await
            .unwrap()
    );
    let synced = h
        .integration_where(tenant, &id, |i| i.records_synced == 1)
        .await;
    answers += &format!("{synced:?}");
    let viewer = h.token(tenant, Role::Viewer);
    answers += &format!(
        "{:?}",
        h.client()
            .list_integrations(with_token(
                api::ListIntegrationsRequest {
                    tenant_id: tenant.to_string(),
                    min_position: 0
                },
                &viewer,
            ))
            .await
            .unwrap()
    );
    answers += &format!(
        "{:?}",
        h.client()
            .get_sync_status(with_token(
                api::GetSyncStatusRequest {
                    tenant_id: tenant.to_string(),
                    min_position: 0
                },
                &viewer,
            ))
            .await
            .unwrap()
    );
    // A MercadoLibre integration whose tokens are refreshed (and rotated) during a run.
    let seller = h
        .client()
        .create_integration(with_token(
            api::CreateIntegrationRequest {
                tenant_id: tenant.to_string(),
                name: "Seller".into(),
                r#type: "mercadolibre".into(),
                config: Some(tenantry_proto::events::v1::IntegrationConfig {
                    source: Some(
                        tenantry_proto::events::v1::integration_config::Source::Mercadolibre(
                            tenantry_proto::events::v1::MercadoLibreConfig {
                                seller_id: common::mercadolibre::SELLER.into(),
                            },
                        ),
                    ),
                }),
                schedule: None,
                credentials: [
                    ("client_id", common::mercadolibre::CLIENT_ID),
                    ("client_secret", common::mercadolibre::CLIENT_SECRET),
                    ("refresh_token", first_refresh.as_str()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    answers += &format!("{seller:?}");
    assert!(matches!(
        h.run(
            tenant,
            &seller.integration_id,
            tenantry_sync::runs::Mode::Full
        )
        .await,
        Some(tenantry_sync::domain::RunOutcome::Succeeded { records: 1, .. })
    ));
    assert_eq!(ml.refreshes(), 1);
    let rotated = ml.refresh_token();
    let access = format!("APP_USR-1-{}", common::mercadolibre::SELLER);
    h.svc.usage.publish_pending().await.unwrap();

    // It was used: the source saw it (so the searches below look for something real).
    assert!(source.requests().len() >= 3);
    let secret = canary.trim_start_matches("Bearer ");
    let secrets = [
        secret,
        first_refresh.as_str(),
        rotated.as_str(),
        access.as_str(),
        common::mercadolibre::CLIENT_SECRET,
    ];
    assert!(answers.contains("auth_value"), "names are answered");
    for secret in secrets {
        assert!(!answers.contains(secret), "an API answer holds {secret}");
    }
    for kind in [StreamKind::Events, StreamKind::Usage, StreamKind::Jobs] {
        let bytes = stream_bytes(&h, kind).await;
        // The log and the usage hold this test's messages (a job is gone once done).
        assert!(
            kind == StreamKind::Jobs || !bytes.is_empty(),
            "{kind:?} is empty"
        );
        if kind == StreamKind::Events {
            assert!(
                contains(&bytes, "integration.created.v1"),
                "the log was read"
            );
        }
        for secret in secrets {
            assert!(!contains(&bytes, secret), "{kind:?} holds {secret}");
        }
    }
    let dump = std::process::Command::new("pg_dump")
        .args([
            "--data-only",
            "--schema",
            &h.env.schema("sync"),
            tenantry_testkit::ADMIN_URL,
        ])
        .output()
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    assert!(contains(&dump.stdout, "data_keys") || contains(&dump.stdout, "integrations"));
    for secret in secrets {
        assert!(
            !contains(&dump.stdout, secret),
            "the database holds {secret}"
        );
    }
    let logged = logs.0.lock().unwrap().clone();
    assert!(contains(&logged, "sync"), "the logs were captured");
    for secret in secrets {
        assert!(!contains(&logged, secret), "the logs hold {secret}");
    }
}
