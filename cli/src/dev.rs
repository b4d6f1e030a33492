//! `tenantry dev`: the auth service, then the tenant service and the gateway (verifying tokens
//! through the auth service's JWKS), in one process, with a development platform admin.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use anyhow::Context;
use tenantry_auth::AuthConfig;
use tenantry_gateway::GatewayConfig;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::egress::{Cidr, Networks};
use tenantry_tenant::TenantConfig;

pub const DEV_ADMIN: &str = "admin@tenantry.local";
const DEV_DIR: &str = ".tenantry/dev";

/// The development admin's password file, created with a random password on first use.
fn dev_password() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(DEV_DIR).join("admin.password");
    if !path.exists() {
        std::fs::create_dir_all(DEV_DIR)?;
        let password = format!("dev-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(&path, password).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(path)
}

/// Loopback, for tenants' backends and identity providers run on the developer's machine.
fn loopback() -> Vec<Cidr> {
    [
        (IpAddr::from(Ipv4Addr::LOCALHOST), 8),
        (IpAddr::from(Ipv6Addr::LOCALHOST), 128),
    ]
    .into_iter()
    .filter_map(|(ip, prefix)| Cidr::new(ip, prefix))
    .collect()
}

pub async fn run(
    mut common: CommonConfig,
    mut auth: AuthConfig,
    mut tenant: TenantConfig,
    gateway: GatewayConfig,
) -> anyhow::Result<()> {
    let _telemetry = tenantry_kit::telemetry::init("tenantry-dev", common.log_format)?;
    // A route to `127.0.0.1:9000` is how one tries the gateway on a laptop: development
    // allows loopback explicitly (the platform's own ports stay refused). An operator's own
    // TENANTRY_EGRESS_ALLOW is kept as given.
    let loopback_added = common.egress_allow.0.is_empty();
    if loopback_added {
        common.egress_allow = Networks(loopback());
    }
    // One base domain: the one the gateway serves tenants under.
    tenant.base_domain = gateway.base_domain.clone();
    if auth.bootstrap_admin_email.is_none() {
        auth.bootstrap_admin_email = Some(DEV_ADMIN.into());
        auth.bootstrap_admin_password_file = Some(dev_password()?);
    }
    let shutdown = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let auth_listener = tokio::net::TcpListener::bind(auth.listen).await?;
    let auth_running = tenantry_auth::start(
        &common,
        &auth,
        auth_listener,
        Default::default(),
        stopped(shutdown.1.clone()),
    )
    .await?;
    let tenant_listener = tokio::net::TcpListener::bind(tenant.listen).await?;
    let tenant_running = tenantry_tenant::start(
        &common,
        &tenant,
        tenant_listener,
        Default::default(),
        stopped(shutdown.1.clone()),
    )
    .await?;
    let gateway_running = tenantry_gateway::start(
        &common,
        &gateway,
        tokio::net::TcpListener::bind(gateway.listen).await?,
        tokio::net::TcpListener::bind(gateway.api_listen).await?,
        Default::default(),
        stopped(shutdown.1.clone()),
    )
    .await?;
    eprintln!("\ntenantry dev is running (Ctrl-C stops it)");
    eprintln!(
        "  auth service     grpc+http://{}   (/.well-known/jwks.json)",
        auth_running.addr
    );
    eprintln!(
        "  tenant service   grpc+http://{}   (/healthz /readyz /metrics)",
        tenant_running.addr
    );
    eprintln!(
        "  gateway          http://{}   (tenants at <slug>.{}; config API grpc://{})",
        gateway_running.addr, gateway.base_domain, gateway_running.api_addr
    );
    eprintln!("  not built yet    billing, orchestration, sync");
    eprintln!(
        "  outbound policy  {} allowed for tenants' backends and identity providers{}; the platform's own ports stay refused",
        common.egress_allow,
        if loopback_added {
            " (loopback: development only, TENANTRY_EGRESS_ALLOW overrides)"
        } else {
            " (TENANTRY_EGRESS_ALLOW)"
        }
    );
    if let (Some(email), Some(file)) = (
        &auth.bootstrap_admin_email,
        &auth.bootstrap_admin_password_file,
    ) {
        eprintln!(
            "\nPlatform admin {email}; a token for it:\n  export TENANTRY_TOKEN=$(tenantry login --email {email} --password-file {})\n",
            file.display()
        );
    }
    tenantry_kit::server::shutdown_signal().await;
    let _ = shutdown.0.send(true);
    let _ = tokio::join!(auth_running.task, tenant_running.task, gateway_running.task);
    Ok(())
}
