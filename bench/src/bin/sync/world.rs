//! What the three sync figures share: sync started in the bench's world (loopback sources
//! allowed, a master key file of the world's own), `http_json` integrations created through
//! its gRPC API, a stand-in JSON source, and percentiles.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tenantry_kit::Role;
use tenantry_kit::service::Running;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::sync::v1::{self as api, sync_service_client::SyncServiceClient};
use tenantry_sync::{Handle, SyncConfig, SyncService};
use tenantry_testkit::TestEnv;
use tonic::metadata::MetadataValue;
use uuid::Uuid;

pub use crate::source::Source;

/// Sync running in `env`, and the master key file it was given (removed by `Drop`).
pub struct Sync {
    pub svc: Running<Handle>,
    pub client: SyncServiceClient<tonic::transport::Channel>,
    master_key: PathBuf,
}

impl Drop for Sync {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.master_key);
    }
}

/// Starts sync in `env` with `adjust`ed ephemeral settings, loopback sources allowed.
pub async fn start_sync(env: &TestEnv, adjust: impl FnOnce(&mut SyncConfig)) -> Sync {
    use base64::Engine as _;
    let master_key = std::env::temp_dir().join(format!("{}-bench-sync-master.key", env.id));
    // A fixed key is fine: the world (and everything sealed under it) is deleted at the end.
    let _ = std::fs::write(
        &master_key,
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    );
    let mut config = SyncConfig::ephemeral(master_key.clone());
    adjust(&mut config);
    let mut common = env.common();
    common.egress_allow = "127.0.0.0/8"
        .parse()
        .unwrap_or_else(|e| panic!("loopback parses: {e:?}"));
    let svc = env
        .start_with(
            &common,
            SyncService {
                config,
                clock: Arc::new(tenantry_kit::SystemClock),
            },
        )
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    Sync {
        svc,
        client: SyncServiceClient::new(channel),
        master_key,
    }
}

/// A created integration: its tenant, id and webhook secret.
#[derive(Clone)]
pub struct Created {
    pub tenant: Uuid,
    pub id: Uuid,
    pub secret: String,
}

/// Creates an `http_json` integration of `tenant` reading `url` (records at
/// `$.data.items[*]`, paged by `page`, resumed from `updated_at`) on `schedule`; `page_size`
/// is the source's page size as declared to sync (0: paged until an empty page, as the
/// records and webhooks figures were measured).
pub async fn create_integration(
    env: &TestEnv,
    sync: &Sync,
    tenant: Uuid,
    url: &str,
    schedule: pb::Schedule,
    page_size: u32,
) -> anyhow::Result<Created> {
    let request = api::CreateIntegrationRequest {
        tenant_id: tenant.to_string(),
        name: "Bench items".into(),
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
                    page_size,
                },
            )),
        }),
        schedule: Some(schedule),
        credentials: [("auth_value".to_string(), crate::source::TOKEN.to_string())].into(),
    };
    let mut request = tonic::Request::new(request);
    let bearer: MetadataValue<_> = format!("Bearer {}", env.token(Some(tenant), Role::Member))
        .parse()
        .context("token as metadata")?;
    request.metadata_mut().insert("authorization", bearer);
    let created = sync
        .client
        .clone()
        .create_integration(request)
        .await
        .context("create an integration")?
        .into_inner();
    Ok(Created {
        tenant,
        id: created.integration_id.parse()?,
        secret: created.webhook_secret,
    })
}

/// A manual schedule (runs only when asked).
pub fn manual() -> pb::Schedule {
    pb::Schedule {
        frequency: pb::ScheduleFrequency::Manual as i32,
        cron: String::new(),
    }
}

/// Sync's schema in `env`, quoted for SQL.
pub fn schema(env: &TestEnv) -> String {
    format!("\"{}\"", env.schema("sync"))
}

/// Waits until the read model holds `n` integrations (the scheduler and webhooks read it).
pub async fn wait_projected(
    admin: &sqlx::PgPool,
    env: &TestEnv,
    n: i64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let sql = format!("SELECT count(*) FROM {}.integrations", schema(env));
    loop {
        let (have,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(admin)
            .await?;
        if have >= n {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "{have} of {n} integrations projected after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Deletes the bench's world now, unless `TENANTRY_TEST_KEEP` asks to keep it for a look.
pub async fn cleanup(env: &TestEnv) {
    if std::env::var_os("TENANTRY_TEST_KEEP").is_none() {
        env.cleanup().await;
    }
}

/// The `p`th percentile (0–100) of sorted `values` (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `values` sorted, for [`percentile`].
pub fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The 1-minute load average, for the report (other builds share the machine).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}
