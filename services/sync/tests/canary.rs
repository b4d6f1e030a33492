//! Secrets canary: a unique credential goes in through the API and is used against the
//! source, and is then looked for in the clear in the API's answers, the event log and the
//! other streams, a dump of sync's Postgres schema, and the logs: found nowhere.

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

    let h = common::start_allowing_loopback().await;
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
    h.svc.usage.publish_pending().await.unwrap();

    // It was used: the source saw it (so the searches below look for something real).
    assert!(source.requests().len() >= 3);
    let secret = canary.trim_start_matches("Bearer ");
    assert!(answers.contains("auth_value"), "names are answered");
    assert!(
        !answers.contains(secret),
        "an API answer holds the credential"
    );
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
        assert!(!contains(&bytes, secret), "{kind:?} holds the credential");
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
    assert!(
        !contains(&dump.stdout, secret),
        "the database holds the credential"
    );
    let logged = logs.0.lock().unwrap().clone();
    assert!(contains(&logged, "sync"), "the logs were captured");
    assert!(!contains(&logged, secret), "the logs hold the credential");
}
