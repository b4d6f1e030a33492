//! Configuration shared by every service: flags, or `TENANTRY_*` environment variables, with
//! defaults that run on one machine. Secrets come from the environment or files, never flags.

use std::path::PathBuf;

/// Settings every service reads.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonConfig {
    /// NATS server (with JetStream). The default is the project's own development server,
    /// which `scripts/infra-up.sh` runs with a user per service (ADR 0009).
    #[arg(
        long,
        env = "TENANTRY_NATS_URL",
        default_value = "nats://127.0.0.1:4223"
    )]
    pub nats_url: String,

    /// Directory holding the service's NATS password as `<service>.password` (the NATS user
    /// is the service's name, e.g. `tenant`), so each service connects as itself and may
    /// publish only its own aggregates (ADR 0009). Unset: no credentials, for a NATS without
    /// authentication. `tenantry dev` uses the development credentials `infra-up` generates.
    #[arg(long, env = "TENANTRY_NATS_CREDENTIALS_DIR")]
    pub nats_credentials_dir: Option<PathBuf>,

    /// Postgres URL of a role that owns the service's schema; used only to create the
    /// database, schema and service role and to run migrations. The service itself connects
    /// to the same server as its own role, which owns nothing and cannot bypass RLS. The
    /// default talks to a local server in the clear (TLS on loopback only costs CPU); use
    /// `sslmode=verify-full` for a remote one.
    #[arg(
        long,
        env = "TENANTRY_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/tenantry?sslmode=disable"
    )]
    pub database_url: String,

    /// File holding the password of the service's database role (none with trust auth).
    #[arg(long, env = "TENANTRY_DATABASE_SERVICE_PASSWORD_FILE")]
    pub database_service_password_file: Option<PathBuf>,

    /// Prefix of stream names and subject roots, so installations (or test runs) can share a
    /// NATS server: `acme` gives stream `ACME_EVENTS` on `acme.evt.>`.
    #[arg(long, env = "TENANTRY_STREAM_PREFIX")]
    pub stream_prefix: Option<String>,

    /// Prefix of the services' Postgres schemas, so installations (or test runs) can share a
    /// database: `acme` gives schema `acme_tenant`.
    #[arg(long, env = "TENANTRY_DB_SCHEMA_PREFIX")]
    pub db_schema_prefix: Option<String>,

    /// Replicas of the streams Tenantry creates (3 in production).
    #[arg(long, env = "TENANTRY_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,

    /// JWKS used to verify access tokens: the auth service's `/.well-known/jwks.json`, or a
    /// file path.
    #[arg(
        long,
        env = "TENANTRY_JWKS",
        default_value = "http://127.0.0.1:7002/.well-known/jwks.json"
    )]
    pub jwks: String,

    /// Seconds a read of the JWKS is trusted before it is read again (at most 300): a signing
    /// key withdrawn from the JWKS stops being accepted within this.
    #[arg(long, env = "TENANTRY_JWKS_MAX_AGE_SECS", default_value_t = 300)]
    pub jwks_max_age_secs: u64,

    /// Expected `iss` of access tokens.
    #[arg(long, env = "TENANTRY_JWT_ISSUER", default_value = "tenantry")]
    pub jwt_issuer: String,

    /// Expected `aud` of access tokens.
    #[arg(long, env = "TENANTRY_JWT_AUDIENCE", default_value = "tenantry")]
    pub jwt_audience: String,

    /// Networks that outbound calls made on a tenant's word (route backends, health checks,
    /// domain proofs, OIDC fetches) may reach although the default policy refuses them
    /// (loopback, link-local, private and shared ranges): comma-separated CIDRs, e.g.
    /// `10.20.0.0/16,fd00:20::/64`. The platform's own addresses stay refused. See ADR 0006.
    #[arg(long, env = "TENANTRY_EGRESS_ALLOW", default_value = "")]
    pub egress_allow: crate::net::Networks,

    /// Networks such calls may never reach, checked before the allowed ones (a deny wins):
    /// comma-separated CIDRs.
    #[arg(long, env = "TENANTRY_EGRESS_DENY", default_value = "")]
    pub egress_deny: crate::net::Networks,

    /// Log output: `text` for people, `json` for collectors. Levels come from `RUST_LOG`.
    #[arg(long, env = "TENANTRY_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Connection caps and timeouts of the service's port (`TENANTRY_SERVER_*`).
    #[command(flatten)]
    pub server: crate::server::ServerLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl CommonConfig {
    /// The schema a service named `schema` uses: with the prefix, if one is set.
    pub fn schema(&self, schema: &str) -> String {
        match self.db_schema_prefix.as_deref().filter(|p| !p.is_empty()) {
            Some(prefix) => format!("{prefix}_{schema}"),
            None => schema.to_owned(),
        }
    }

    /// The service role's password, read from its file if one is configured (or
    /// `TENANTRY_DATABASE_SERVICE_PASSWORD`).
    pub fn database_service_password(&self) -> std::io::Result<Option<String>> {
        if let Some(path) = &self.database_service_password_file {
            return Ok(Some(std::fs::read_to_string(path)?.trim().to_owned()));
        }
        Ok(std::env::var("TENANTRY_DATABASE_SERVICE_PASSWORD").ok())
    }
}
