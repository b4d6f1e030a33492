//! The tenant service's own settings (the shared ones are in `tenantry_kit::config`).

use std::net::SocketAddr;

#[derive(Debug, Clone, clap::Args)]
pub struct TenantConfig {
    /// Address of the tenant service's gRPC and HTTP port.
    #[arg(
        long = "tenant-listen",
        env = "TENANTRY_TENANT_LISTEN",
        default_value = "127.0.0.1:7001"
    )]
    pub listen: SocketAddr,

    /// Postgres schema of the read model.
    #[arg(
        long = "tenant-db-schema",
        env = "TENANTRY_TENANT_DB_SCHEMA",
        default_value = "tenant"
    )]
    pub db_schema: String,

    /// Postgres role the service connects as (created without privileges if missing).
    #[arg(
        long = "tenant-db-role",
        env = "TENANTRY_TENANT_DB_ROLE",
        default_value = "tenantry_tenant"
    )]
    pub db_role: String,

    #[arg(
        long = "tenant-db-max-connections",
        env = "TENANTRY_TENANT_DB_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub db_max_connections: u32,

    /// How often running trials are checked for expiry.
    #[arg(
        long = "tenant-trial-sweep-interval-secs",
        env = "TENANTRY_TENANT_TRIAL_SWEEP_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub trial_sweep_interval_secs: u64,

    /// The platform's base domain: tenants answer on `<slug>.<base domain>` at the gateway,
    /// so no custom domain may be the base domain or under it. The same variable as the
    /// gateway's, so the two cannot disagree.
    #[arg(
        long = "tenant-base-domain",
        env = "TENANTRY_GATEWAY_BASE_DOMAIN",
        default_value = "localhost"
    )]
    pub base_domain: String,
}

impl TenantConfig {
    /// The defaults, on an ephemeral loopback port (tests, benchmarks).
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_schema: "tenant".into(),
            db_role: "tenantry_tenant".into(),
            db_max_connections: 16,
            trial_sweep_interval_secs: 3600,
            base_domain: "localhost".into(),
        }
    }
}
