//! The gRPC API: validation naming the field with nothing appended, roles, tenant isolation,
//! a run through the job queue, and the status shape.

mod common;

use std::time::Duration;

use common::source::{Source, TOKEN};
use common::{create_request, with_token};
use tenantry_eventstore::StreamKind;
use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1 as api;
use tonic::Code;
use uuid::Uuid;

fn field_of(status: &tonic::Status) -> &str {
    status.message()
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field_and_nothing_is_appended() {
    let h = common::start().await;
    let tenant = Uuid::now_v7();
    let token = h.token(tenant, Role::Member);
    let store = h.env.event_store().await;
    let before = store.last_position_of(StreamKind::Events).await.unwrap();
    let good = || create_request(tenant, "https://api.example.com/items", "Bearer x");
    let cases: Vec<(&str, api::CreateIntegrationRequest)> = vec![
        (
            "type",
            api::CreateIntegrationRequest {
                r#type: "shopify".into(),
                ..good()
            },
        ),
        (
            "schedule.cron",
            api::CreateIntegrationRequest {
                schedule: Some(pb::Schedule {
                    frequency: pb::ScheduleFrequency::Cron as i32,
                    cron: "61 * * * *".into(),
                }),
                ..good()
            },
        ),
        ("config.http_json.records_path", {
            let mut r = good();
            if let Some(pb::integration_config::Source::HttpJson(c)) =
                r.config.as_mut().and_then(|c| c.source.as_mut())
            {
                c.records_path = "$.data[?(".into();
            }
            r
        }),
        ("config.http_json.url", {
            let mut r = good();
            if let Some(pb::integration_config::Source::HttpJson(c)) =
                r.config.as_mut().and_then(|c| c.source.as_mut())
            {
                c.url = "file:///etc/passwd".into();
            }
            r
        }),
        (
            "credentials",
            api::CreateIntegrationRequest {
                r#type: "vtex".into(),
                config: Some(pb::IntegrationConfig {
                    source: Some(pb::integration_config::Source::Vtex(pb::VtexConfig {
                        account_name: "chelseaio".into(),
                        environment: String::new(),
                    })),
                }),
                ..good()
            },
        ),
        (
            "name",
            api::CreateIntegrationRequest {
                name: String::new(),
                ..good()
            },
        ),
        (
            "tenant_id",
            api::CreateIntegrationRequest {
                tenant_id: "nope".into(),
                ..good()
            },
        ),
    ];
    for (field, request) in cases {
        let status = h
            .client()
            .create_integration(with_token(request, &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            field_of(&status).contains(field),
            "{field}: {}",
            status.message()
        );
    }
    // Trigger's own fields.
    let created = h
        .create_http_json(tenant, "https://api.example.com/items", "Bearer x")
        .await;
    let after_create = store.last_position_of(StreamKind::Events).await.unwrap();
    for (field, mode, priority) in [("mode", "sometimes", 5), ("priority", "full", 12)] {
        let status = h
            .client()
            .trigger_sync(with_token(
                api::TriggerSyncRequest {
                    tenant_id: tenant.to_string(),
                    integration_id: created.integration_id.clone(),
                    mode: mode.into(),
                    priority,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(field), "{}", status.message());
    }
    assert_eq!(after_create, before + 1, "only the valid create appended");
    assert_eq!(
        store.last_position_of(StreamKind::Events).await.unwrap(),
        after_create
    );
}

#[tokio::test]
async fn roles_are_enforced() {
    let h = common::start().await;
    let tenant = Uuid::now_v7();
    let status = h
        .client()
        .create_integration(with_token(
            create_request(tenant, "https://api.example.com/items", "Bearer x"),
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let listed = h
        .client()
        .list_integrations(with_token(
            api::ListIntegrationsRequest {
                tenant_id: tenant.to_string(),
                min_position: 0,
            },
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.integrations.is_empty());
}

#[tokio::test]
async fn tenant_b_cannot_list_get_trigger_change_or_read_the_status_of_a_s_integrations() {
    let h = common::start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let created = h
        .create_http_json(a, "https://api.example.com/items", "Bearer x")
        .await;
    let a_id = created.integration_id.clone();
    h.integration_where(a, &a_id, |_| true).await;
    let mut c = h.client();
    let b_member = h.token(b, Role::Owner);

    // B asking about its own tenant: A's integration is not there.
    let listed = c
        .list_integrations(with_token(
            api::ListIntegrationsRequest {
                tenant_id: b.to_string(),
                min_position: created.position,
            },
            &b_member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.integrations.is_empty());
    let status = c
        .get_sync_status(with_token(
            api::GetSyncStatusRequest {
                tenant_id: b.to_string(),
                min_position: created.position,
            },
            &b_member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(status.integrations.is_empty());
    for result in [
        c.get_integration(with_token(
            api::GetIntegrationRequest {
                tenant_id: b.to_string(),
                integration_id: a_id.clone(),
                min_position: 0,
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.trigger_sync(with_token(
            api::TriggerSyncRequest {
                tenant_id: b.to_string(),
                integration_id: a_id.clone(),
                mode: String::new(),
                priority: 0,
                ..Default::default()
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.set_integration_enabled(with_token(
            api::SetIntegrationEnabledRequest {
                tenant_id: b.to_string(),
                integration_id: a_id.clone(),
                enabled: false,
                reason: String::new(),
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
    ] {
        assert_eq!(result.unwrap_err().code(), Code::NotFound);
    }

    // B naming A's tenant: refused whatever the RPC.
    let a_text = a.to_string();
    let refused = [
        c.list_integrations(with_token(
            api::ListIntegrationsRequest {
                tenant_id: a_text.clone(),
                min_position: 0,
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.get_integration(with_token(
            api::GetIntegrationRequest {
                tenant_id: a_text.clone(),
                integration_id: a_id.clone(),
                min_position: 0,
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.trigger_sync(with_token(
            api::TriggerSyncRequest {
                tenant_id: a_text.clone(),
                integration_id: a_id.clone(),
                mode: String::new(),
                priority: 0,
                ..Default::default()
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.get_sync_status(with_token(
            api::GetSyncStatusRequest {
                tenant_id: a_text.clone(),
                min_position: 0,
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.set_integration_enabled(with_token(
            api::SetIntegrationEnabledRequest {
                tenant_id: a_text.clone(),
                integration_id: a_id.clone(),
                enabled: false,
                reason: String::new(),
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.create_integration(with_token(
            create_request(a, "https://api.example.com/x", "Bearer y"),
            &b_member,
        ))
        .await
        .map(|_| ()),
        c.validate_credentials(with_token(
            api::ValidateCredentialsRequest {
                tenant_id: a_text.clone(),
                r#type: "http_json".into(),
                config: None,
                credentials: Default::default(),
            },
            &b_member,
        ))
        .await
        .map(|_| ()),
    ];
    for result in refused {
        let code = result.unwrap_err().code();
        assert!(
            matches!(code, Code::NotFound | Code::PermissionDenied),
            "{code:?}"
        );
    }
    // A's integration is as it was.
    let i = h.integration_where(a, &a_id, |_| true).await;
    assert!(i.enabled);
    assert_eq!(i.failure_streak, 0);
}

#[tokio::test]
async fn a_triggered_run_goes_through_the_job_queue_and_shows_in_the_status() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    source.add(2, "2026-01-02", "two");
    source.add(3, "2026-01-03", "three");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let created = h.create_http_json(tenant, &url, TOKEN).await;
    h.integration_where(tenant, &created.integration_id, |_| true)
        .await;
    let member = h.token(tenant, Role::Member);
    let run = h
        .client()
        .trigger_sync(with_token(
            api::TriggerSyncRequest {
                tenant_id: tenant.to_string(),
                integration_id: created.integration_id.clone(),
                mode: "full".into(),
                priority: 7,
                ..Default::default()
            },
            &member,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(Uuid::try_parse(&run.run_id).is_ok());
    let i = h
        .integration_where(tenant, &created.integration_id, |i| i.records_synced == 3)
        .await;
    assert_eq!(i.cursors["items"], "2026-01-03");
    assert_eq!(h.records(tenant, &created.integration_id).await, 3);

    let status = h
        .client()
        .get_sync_status(with_token(
            api::GetSyncStatusRequest {
                tenant_id: tenant.to_string(),
                min_position: 0,
            },
            &h.token(tenant, Role::Viewer),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.overall_status, "healthy");
    let s = &status.integrations[0];
    assert_eq!(
        (s.status.as_str(), s.health.as_str(), s.records_synced),
        ("active", "healthy", 3)
    );
    assert!(s.last_sync.is_some() && s.next_sync.is_some());

    // Disabled: no more triggers.
    h.client()
        .set_integration_enabled(with_token(
            api::SetIntegrationEnabledRequest {
                tenant_id: tenant.to_string(),
                integration_id: created.integration_id.clone(),
                enabled: false,
                reason: "paused".into(),
            },
            &member,
        ))
        .await
        .unwrap();
    let status = h
        .client()
        .trigger_sync(with_token(
            api::TriggerSyncRequest {
                tenant_id: tenant.to_string(),
                integration_id: created.integration_id.clone(),
                mode: String::new(),
                priority: 0,
                ..Default::default()
            },
            &member,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn validate_credentials_makes_one_call_and_says_what_is_wrong() {
    let h = common::start_allowing_loopback().await;
    let source = Source::default();
    source.add(1, "2026-01-01", "one");
    let (_, url) = source.serve().await;
    let tenant = Uuid::now_v7();
    let request = |auth: &str| {
        let r = create_request(tenant, &url, auth);
        api::ValidateCredentialsRequest {
            tenant_id: tenant.to_string(),
            r#type: r.r#type,
            config: r.config,
            credentials: r.credentials,
        }
    };
    let member = h.token(tenant, Role::Member);
    let ok = h
        .client()
        .validate_credentials(with_token(request(TOKEN), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.valid, "{:?}", ok.problems);
    let bad = h
        .client()
        .validate_credentials(with_token(request("Bearer nope"), &member))
        .await
        .unwrap()
        .into_inner();
    assert!(!bad.valid);
    assert_eq!(
        bad.problems,
        vec!["the source refused the credentials (HTTP 401)"]
    );
    assert_eq!(source.requests().len(), 2, "one call each");
}
