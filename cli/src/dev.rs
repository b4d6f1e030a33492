//! `tenantry dev`: the auth service, then the tenant service and the gateway (verifying tokens
//! through the auth service's JWKS), in one process, with a development platform admin.

use std::path::PathBuf;

use anyhow::Context;
use tenantry_auth::AuthConfig;
use tenantry_gateway::GatewayConfig;
use tenantry_kit::config::CommonConfig;
use tenantry_tenant::TenantConfig;

pub const DEV_ADMIN: &str = "admin@tenantry.local";
const DEV_DIR: &str = ".tenantry/dev";

/// The development admin's password file, created with a random password on first use;
/// readable by its owner only (one written 0644 by an older version is restricted).
fn dev_password() -> anyhow::Result<PathBuf> {
    use tenantry_auth::crypto::secret_file;
    let path = PathBuf::from(DEV_DIR).join("admin.password");
    if path.exists() {
        secret_file::restrict(&path).with_context(|| format!("chmod {}", path.display()))?;
    } else {
        let password = format!("dev-{}", uuid::Uuid::new_v4().simple());
        secret_file::create_private(&path, password.as_bytes())
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(path)
}

pub async fn run(
    common: CommonConfig,
    mut auth: AuthConfig,
    tenant: TenantConfig,
    gateway: GatewayConfig,
) -> anyhow::Result<()> {
    let _telemetry = tenantry_kit::telemetry::init("tenantry-dev", common.log_format)?;
    if auth.bootstrap_admin_email.is_none() {
        auth.bootstrap_admin_email = Some(DEV_ADMIN.into());
        auth.bootstrap_admin_password_file = Some(dev_password()?);
    }
    // Only here may a master key be made up: the auth service alone requires one.
    if auth.master_key_file.is_none() {
        auth.master_key_file = Some(tenantry_auth::dev_master_key()?);
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
