//! Configuration shared by every service: flags, or `TENANTRY_*` environment variables, with
//! defaults that run on one machine. Secrets come from the environment or files, never flags.

use std::path::PathBuf;

/// Settings every service reads.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonConfig {
    /// NATS server (with JetStream).
    #[arg(
        long,
        env = "TENANTRY_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,

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

    /// Expected `iss` of access tokens.
    #[arg(long, env = "TENANTRY_JWT_ISSUER", default_value = "tenantry")]
    pub jwt_issuer: String,

    /// Expected `aud` of access tokens.
    #[arg(long, env = "TENANTRY_JWT_AUDIENCE", default_value = "tenantry")]
    pub jwt_audience: String,

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
    /// The service role's password, read from its file if one is configured (or
    /// `TENANTRY_DATABASE_SERVICE_PASSWORD`).
    pub fn database_service_password(&self) -> std::io::Result<Option<String>> {
        if let Some(path) = &self.database_service_password_file {
            return Ok(Some(std::fs::read_to_string(path)?.trim().to_owned()));
        }
        Ok(std::env::var("TENANTRY_DATABASE_SERVICE_PASSWORD").ok())
    }
}
