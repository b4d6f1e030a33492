//! Starting the sync service in-process for a test, on the real NATS and Postgres.

#![allow(dead_code)]

pub mod facebook;
pub mod google;
pub mod mercadolibre;
pub mod source;
pub mod vtex;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tenantry_kit::Role;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1::{self as api, sync_service_client::SyncServiceClient};
use uuid::Uuid;

use tenantry_kit::service::Running;
use tenantry_sync::{Handle, SyncConfig, SyncService};
use tenantry_testkit::TestEnv;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

pub struct Harness {
    pub svc: Running<Handle>,
    pub channel: Channel,
    pub env: TestEnv,
    pub master_key: PathBuf,
}

/// A master key file of the test's own (removed by `Drop`).
pub fn master_key_file(env: &TestEnv, name: &str, byte: u8) -> PathBuf {
    use base64::Engine;
    let path = std::env::temp_dir().join(format!("{}-{name}.key", env.id));
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode([byte; 32]),
    )
    .unwrap();
    path
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut SyncConfig)) -> Harness {
    start_full(adjust, |_| {}).await
}

/// With the outbound policy allowing loopback (the sources tests run live there).
pub async fn start_allowing_loopback() -> Harness {
    start_full(
        |_| {},
        |common| {
            common.egress_allow = "127.0.0.0/8".parse().unwrap();
        },
    )
    .await
}

pub async fn start_full(
    adjust: impl FnOnce(&mut SyncConfig),
    adjust_common: impl FnOnce(&mut tenantry_kit::config::CommonConfig),
) -> Harness {
    start_clocked(adjust, adjust_common, Arc::new(tenantry_kit::SystemClock)).await
}

/// Loopback allowed, the service on `clock`.
pub async fn start_on_clock(clock: tenantry_kit::ManualClock) -> Harness {
    start_clocked(
        |_| {},
        |common| common.egress_allow = "127.0.0.0/8".parse().unwrap(),
        Arc::new(clock),
    )
    .await
}

pub async fn start_clocked(
    adjust: impl FnOnce(&mut SyncConfig),
    adjust_common: impl FnOnce(&mut tenantry_kit::config::CommonConfig),
    clock: Arc<dyn tenantry_kit::Clock>,
) -> Harness {
    let env = TestEnv::new().await;
    let master_key = master_key_file(&env, "master", 1);
    let mut config = SyncConfig::ephemeral(master_key.clone());
    adjust(&mut config);
    let mut common = env.common();
    adjust_common(&mut common);
    let svc = env.start_with(&common, SyncService { config, clock }).await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    Harness {
        svc,
        channel,
        env,
        master_key,
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.master_key);
    }
}

/// Attaches a bearer token to a request.
pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

impl Harness {
    pub fn client(&self) -> SyncServiceClient<Channel> {
        SyncServiceClient::new(self.channel.clone())
    }

    pub fn token(&self, tenant: Uuid, role: Role) -> String {
        self.env.token(Some(tenant), role)
    }

    /// An `http_json` integration of `tenant` reading `url` (the stand-in's items).
    pub async fn create_http_json(
        &self,
        tenant: Uuid,
        url: &str,
        auth_value: &str,
    ) -> api::CreateIntegrationResponse {
        self.client()
            .create_integration(with_token(
                create_request(tenant, url, auth_value),
                &self.token(tenant, Role::Member),
            ))
            .await
            .expect("create the integration")
            .into_inner()
    }

    /// The integration as the read model has it, once it satisfies `check`.
    pub async fn integration_where(
        &self,
        tenant: Uuid,
        id: &str,
        check: impl Fn(&api::Integration) -> bool,
    ) -> api::Integration {
        let token = self.token(tenant, Role::Viewer);
        tenantry_testkit::eventually("the integration", Duration::from_secs(10), || async {
            self.client()
                .get_integration(with_token(
                    api::GetIntegrationRequest {
                        tenant_id: tenant.to_string(),
                        integration_id: id.into(),
                        min_position: 0,
                    },
                    &token,
                ))
                .await
                .ok()
                .map(|r| r.into_inner())
                .filter(|i| check(i))
        })
        .await
    }

    /// Runs `integration` of `tenant` now, through the runner (not the queue).
    pub async fn run(
        &self,
        tenant: Uuid,
        integration: &str,
        mode: tenantry_sync::runs::Mode,
    ) -> Option<tenantry_sync::domain::RunOutcome> {
        let job = tenantry_sync::runs::Job {
            tenant_id: tenant,
            integration_id: integration.parse().unwrap(),
            run_id: Uuid::now_v7(),
            mode,
            priority: 5,
        };
        self.svc
            .runner
            .run(&job)
            .await
            .expect("the run is recorded")
    }

    pub async fn records(&self, tenant: Uuid, integration: &str) -> i64 {
        tenantry_sync::records::count(
            &self.svc.pool,
            tenant,
            integration.parse().unwrap(),
            "items",
        )
        .await
        .unwrap()
    }

    /// Every `USAGE` report published for `tenant`, as (meter, quantity).
    pub async fn usage_reports(&self, tenant: Uuid) -> Vec<(String, u64)> {
        use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
        use futures::StreamExt;
        use prost::Message;
        let store = self.env.event_store().await;
        let names = store.names().clone();
        let (stream_name, root) = names.of(tenantry_eventstore::StreamKind::Usage);
        let stream = store.jetstream().get_stream(stream_name).await.unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: format!("{root}.{tenant}.>"),
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
            let report = pb::UsageReport::decode(m.payload.as_ref()).unwrap();
            let meter = m.subject.rsplit('.').next().unwrap().to_owned();
            out.push((meter, report.quantity));
        }
        out
    }
}

pub fn create_request(tenant: Uuid, url: &str, auth_value: &str) -> api::CreateIntegrationRequest {
    api::CreateIntegrationRequest {
        tenant_id: tenant.to_string(),
        name: "Store items".into(),
        r#type: "http_json".into(),
        config: Some(pb::IntegrationConfig {
            source: Some(pb::integration_config::Source::HttpJson(
                pb::HttpJsonConfig {
                    url: url.into(),
                    auth_header: "Authorization".into(),
                    records_path: "$.data.items[*]".into(),
                    id_field: "id".into(),
                    cursor_field: "updated_at".into(),
                    cursor_param: "updated_since".into(),
                    page_param: "page".into(),
                    stream: "items".into(),
                    page_size: 0,
                },
            )),
        }),
        schedule: Some(pb::Schedule {
            frequency: pb::ScheduleFrequency::Hourly as i32,
            cron: String::new(),
        }),
        credentials: [("auth_value".to_string(), auth_value.to_string())].into(),
    }
}
