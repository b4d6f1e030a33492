//! The auth service's own settings (the shared ones are in `tenantry_kit::config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use tenantry_kit::client_addr::TrustedProxies;

#[derive(Debug, Clone, clap::Args)]
pub struct AuthConfig {
    /// Address of the auth service's gRPC and HTTP port (JWKS at /.well-known/jwks.json).
    #[arg(
        id = "auth-listen",
        long = "auth-listen",
        env = "TENANTRY_AUTH_LISTEN",
        default_value = "127.0.0.1:7002"
    )]
    pub listen: SocketAddr,

    #[arg(
        id = "auth-db-schema",
        long = "auth-db-schema",
        env = "TENANTRY_AUTH_DB_SCHEMA",
        default_value = "auth"
    )]
    pub db_schema: String,

    #[arg(
        id = "auth-db-role",
        long = "auth-db-role",
        env = "TENANTRY_AUTH_DB_ROLE",
        default_value = "tenantry_auth"
    )]
    pub db_role: String,

    #[arg(
        id = "auth-db-max-connections",
        long = "auth-db-max-connections",
        env = "TENANTRY_AUTH_DB_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_max_connections: u32,

    /// File holding the 32-byte master key (base64) that seals signing keys, OIDC client
    /// secrets and password hashes. Required: only `tenantry dev` generates one when unset
    /// (`.tenantry/dev/master.key`).
    #[arg(
        id = "auth-master-key-file",
        long = "auth-master-key-file",
        env = "TENANTRY_AUTH_MASTER_KEY_FILE"
    )]
    pub master_key_file: Option<PathBuf>,

    /// Access-token lifetime in seconds (at most 900).
    #[arg(
        id = "auth-access-token-ttl-secs",
        long = "auth-access-token-ttl-secs",
        env = "TENANTRY_AUTH_ACCESS_TOKEN_TTL_SECS",
        default_value_t = 900
    )]
    pub access_token_ttl_secs: u64,

    /// Session (refresh-token family) lifetime in days.
    #[arg(
        id = "auth-session-ttl-days",
        long = "auth-session-ttl-days",
        env = "TENANTRY_AUTH_SESSION_TTL_DAYS",
        default_value_t = 30
    )]
    pub session_ttl_days: u32,

    /// How long a rotated-in signing key is published before it signs; at least the
    /// verifiers' JWKS refresh interval (30 s).
    #[arg(
        id = "auth-key-publish-lead-secs",
        long = "auth-key-publish-lead-secs",
        env = "TENANTRY_AUTH_KEY_PUBLISH_LEAD_SECS",
        default_value_t = 60
    )]
    pub key_publish_lead_secs: u64,

    /// How often signing keys are re-read from Postgres (rotations by other replicas).
    #[arg(
        id = "auth-key-reload-secs",
        long = "auth-key-reload-secs",
        env = "TENANTRY_AUTH_KEY_RELOAD_SECS",
        default_value_t = 5
    )]
    pub key_reload_secs: u64,

    /// Failed logins allowed per client address per minute (on each replica).
    #[arg(
        id = "auth-login-failures-per-addr",
        long = "auth-login-failures-per-addr",
        env = "TENANTRY_AUTH_LOGIN_FAILURES_PER_ADDR",
        default_value_t = 20
    )]
    pub login_failures_per_addr: u32,

    /// Sign-ups allowed per client address per minute (on each replica).
    #[arg(
        id = "auth-signups-per-addr",
        long = "auth-signups-per-addr",
        env = "TENANTRY_AUTH_SIGNUPS_PER_ADDR",
        default_value_t = 10
    )]
    pub signups_per_addr: u32,

    /// Federated logins begun per client address per minute (on each replica); each one
    /// stores a pending login for ten minutes.
    #[arg(
        id = "auth-oidc-logins-per-addr",
        long = "auth-oidc-logins-per-addr",
        env = "TENANTRY_AUTH_OIDC_LOGINS_PER_ADDR",
        default_value_t = 30
    )]
    pub oidc_logins_per_addr: u32,

    /// How often expired pending federated logins are deleted.
    #[arg(
        id = "auth-oidc-sweep-secs",
        long = "auth-oidc-sweep-secs",
        env = "TENANTRY_AUTH_OIDC_SWEEP_SECS",
        default_value_t = 60
    )]
    pub oidc_sweep_secs: u64,

    /// Proxies whose `X-Forwarded-For` names the client (comma-separated addresses or CIDR
    /// blocks, e.g. the gateways' network). Empty: none, the TCP peer is the client. Without
    /// it, behind the gateway every client shares the gateway's per-address limits.
    #[arg(
        id = "auth-trusted-proxies",
        long = "auth-trusted-proxies",
        env = "TENANTRY_AUTH_TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: TrustedProxies,

    /// The first platform admin: created at start if no account has this e-mail.
    #[arg(
        id = "auth-bootstrap-admin-email",
        long = "auth-bootstrap-admin-email",
        env = "TENANTRY_AUTH_BOOTSTRAP_ADMIN_EMAIL"
    )]
    pub bootstrap_admin_email: Option<String>,

    /// File holding the bootstrap admin's password.
    #[arg(
        id = "auth-bootstrap-admin-password-file",
        long = "auth-bootstrap-admin-password-file",
        env = "TENANTRY_AUTH_BOOTSTRAP_ADMIN_PASSWORD_FILE"
    )]
    pub bootstrap_admin_password_file: Option<PathBuf>,
}

impl AuthConfig {
    /// The defaults, on an ephemeral loopback port (tests, benchmarks).
    pub fn ephemeral(master_key_file: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_schema: "auth".into(),
            db_role: "tenantry_auth".into(),
            db_max_connections: 16,
            master_key_file: Some(master_key_file),
            access_token_ttl_secs: 900,
            session_ttl_days: 30,
            key_publish_lead_secs: 60,
            key_reload_secs: 5,
            login_failures_per_addr: 20,
            signups_per_addr: 10,
            oidc_logins_per_addr: 30,
            oidc_sweep_secs: 60,
            trusted_proxies: TrustedProxies::default(),
            bootstrap_admin_email: None,
            bootstrap_admin_password_file: None,
        }
    }
}
