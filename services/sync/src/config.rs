//! The sync service's own settings (the shared ones are in `tenantry_kit::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct SyncConfig {
    /// Address of the sync service's gRPC and HTTP port.
    #[arg(
        id = "sync-listen",
        long = "sync-listen",
        env = "TENANTRY_SYNC_LISTEN",
        default_value = "127.0.0.1:7005"
    )]
    pub listen: SocketAddr,

    #[arg(
        id = "sync-db-schema",
        long = "sync-db-schema",
        env = "TENANTRY_SYNC_DB_SCHEMA",
        default_value = "sync"
    )]
    pub db_schema: String,

    #[arg(
        id = "sync-db-role",
        long = "sync-db-role",
        env = "TENANTRY_SYNC_DB_ROLE",
        default_value = "tenantry_sync"
    )]
    pub db_role: String,

    #[arg(
        id = "sync-db-max-connections",
        long = "sync-db-max-connections",
        env = "TENANTRY_SYNC_DB_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_max_connections: u32,

    /// File holding the 32-byte master key (base64) that wraps each tenant's data key.
    /// Required: only `tenantry dev` generates one when unset (`.tenantry/dev/sync-master.key`).
    #[arg(
        id = "sync-master-key-file",
        long = "sync-master-key-file",
        env = "TENANTRY_SYNC_MASTER_KEY_FILE"
    )]
    pub master_key_file: Option<PathBuf>,

    /// Files holding earlier master keys, comma-separated: data keys still wrapped by one of
    /// them open, and are re-wrapped under the current master key at start (rotation).
    #[arg(
        id = "sync-previous-master-key-files",
        long = "sync-previous-master-key-files",
        env = "TENANTRY_SYNC_PREVIOUS_MASTER_KEY_FILES",
        value_delimiter = ','
    )]
    pub previous_master_key_files: Vec<PathBuf>,

    /// Sync runs at once in this replica. A run mostly waits for its provider and holds a
    /// database connection only for its short transactions, so there are more runs than
    /// connections.
    #[arg(
        id = "sync-worker-concurrency",
        long = "sync-worker-concurrency",
        env = "TENANTRY_SYNC_WORKER_CONCURRENCY",
        default_value_t = 32
    )]
    pub worker_concurrency: usize,

    /// Runs of one tenant at once in this replica.
    #[arg(
        id = "sync-tenant-concurrency",
        long = "sync-tenant-concurrency",
        env = "TENANTRY_SYNC_TENANT_CONCURRENCY",
        default_value_t = 2
    )]
    pub tenant_concurrency: usize,

    /// How long a run may go without word from its worker before another takes the job.
    #[arg(
        id = "sync-job-ack-wait-secs",
        long = "sync-job-ack-wait-secs",
        env = "TENANTRY_SYNC_JOB_ACK_WAIT_SECS",
        default_value_t = 60
    )]
    pub job_ack_wait_secs: u64,

    /// Longest `Retry-After` a source's 429 is honoured for (a longer one waits this long).
    #[arg(
        id = "sync-max-retry-after-secs",
        long = "sync-max-retry-after-secs",
        env = "TENANTRY_SYNC_MAX_RETRY_AFTER_SECS",
        default_value_t = 120
    )]
    pub max_retry_after_secs: u64,

    /// How often due schedules are looked for (a run starts within this of its due time).
    #[arg(
        id = "sync-schedule-tick-ms",
        long = "sync-schedule-tick-ms",
        env = "TENANTRY_SYNC_SCHEDULE_TICK_MS",
        default_value_t = 1000
    )]
    pub schedule_tick_ms: u64,

    /// VTEX accounts' base URL, `{account}` and `{environment}` replaced by the
    /// integration's (another value: a proxy, or a stand-in in tests).
    #[arg(
        id = "sync-vtex-base-url",
        long = "sync-vtex-base-url",
        env = "TENANTRY_SYNC_VTEX_BASE_URL",
        default_value = "https://{account}.{environment}.com.br"
    )]
    pub vtex_base_url: String,

    /// MercadoLibre's API (another value: a proxy, or a stand-in in tests).
    #[arg(
        id = "sync-mercadolibre-api-url",
        long = "sync-mercadolibre-api-url",
        env = "TENANTRY_SYNC_MERCADOLIBRE_API_URL",
        default_value = "https://api.mercadolibre.com"
    )]
    pub mercadolibre_api_url: String,

    /// The Graph API, with the version Facebook Ads insights are read at (another value: a
    /// proxy, or a stand-in in tests).
    #[arg(
        id = "sync-facebook-graph-url",
        long = "sync-facebook-graph-url",
        env = "TENANTRY_SYNC_FACEBOOK_GRAPH_URL",
        default_value = "https://graph.facebook.com/v19.0"
    )]
    pub facebook_graph_url: String,

    /// The Google Ads API, with its version (another value: a proxy, or a stand-in).
    #[arg(
        id = "sync-google-ads-api-url",
        long = "sync-google-ads-api-url",
        env = "TENANTRY_SYNC_GOOGLE_ADS_API_URL",
        default_value = "https://googleads.googleapis.com/v17"
    )]
    pub google_ads_api_url: String,

    /// Google's OAuth token endpoint (another value: a proxy, or a stand-in).
    #[arg(
        id = "sync-google-token-url",
        long = "sync-google-token-url",
        env = "TENANTRY_SYNC_GOOGLE_TOKEN_URL",
        default_value = "https://oauth2.googleapis.com/token"
    )]
    pub google_token_url: String,
}

impl SyncConfig {
    /// The defaults on an ephemeral loopback port, with the master key in `master_key_file`
    /// (tests, benchmarks).
    pub fn ephemeral(master_key_file: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_schema: "sync".into(),
            db_role: "tenantry_sync".into(),
            db_max_connections: 16,
            master_key_file: Some(master_key_file),
            previous_master_key_files: Vec::new(),
            worker_concurrency: 4,
            tenant_concurrency: 2,
            job_ack_wait_secs: 60,
            max_retry_after_secs: 10,
            schedule_tick_ms: 100,
            vtex_base_url: "https://{account}.{environment}.com.br".into(),
            mercadolibre_api_url: "https://api.mercadolibre.com".into(),
            facebook_graph_url: "https://graph.facebook.com/v19.0".into(),
            google_ads_api_url: "https://googleads.googleapis.com/v17".into(),
            google_token_url: "https://oauth2.googleapis.com/token".into(),
        }
    }
}
