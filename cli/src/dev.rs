//! `tenantry dev`: the auth service, then the tenant service, the billing service, the
//! orchestration service, the sync service and the gateway (verifying tokens through the auth
//! service's JWKS), in one process, with a
//! development platform admin. Each starts through the kit's service template, as its own
//! binary would. Billing calls the tenant service with its own platform service account's
//! key, which [`credential`] makes through the auth service once it is up.

mod credential;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use tenantry_auth::{AuthConfig, AuthService};
use tenantry_billing::{BillingConfig, BillingService};
use tenantry_gateway::{GatewayConfig, GatewayService};
use tenantry_kit::config::CommonConfig;
use tenantry_kit::net::{Cidr, Networks};
use tenantry_kit::service::{self, Running, Service};
use tenantry_orchestration::{OrchestrationConfig, OrchestrationService};
use tenantry_sync::{SyncConfig, SyncService};
use tenantry_tenant::{TenantConfig, TenantService};

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
    mut billing: BillingConfig,
    gateway: GatewayConfig,
    mut orchestration: OrchestrationConfig,
    mut sync: SyncConfig,
) -> anyhow::Result<()> {
    let _telemetry = tenantry_kit::telemetry::init("tenantry-dev", common.log_format)?;
    // A route to `127.0.0.1:9000` is how one tries the gateway on a laptop: development
    // allows loopback explicitly (the platform's own ports stay refused). An operator's own
    // TENANTRY_EGRESS_ALLOW is kept as given.
    let loopback_added = common.egress_allow.0.is_empty();
    if loopback_added {
        common.egress_allow = Networks(loopback());
    }
    // Each service connects to the development NATS (scripts/infra-up.sh) as its own user,
    // with the passwords infra-up generated, unless the operator named other credentials.
    if common.nats_credentials_dir.is_none() {
        common.nats_credentials_dir =
            tenantry_kit::nats::dev_credentials_dir().filter(|dir| dir.is_dir());
    }
    // One base domain: the one the gateway serves tenants under.
    tenant.base_domain = gateway.base_domain.clone();
    if auth.bootstrap_admin_email.is_none() {
        auth.bootstrap_admin_email = Some(DEV_ADMIN.into());
        auth.bootstrap_admin_password_file = Some(dev_password()?);
    }
    // Only here may a master key be made up: the auth service alone requires one.
    if auth.master_key_file.is_none() {
        auth.master_key_file = Some(tenantry_auth::dev_master_key()?);
    }
    // Sync's and orchestration's own master keys (they wrap the tenants' data keys), likewise
    // made up only here.
    if sync.master_key_file.is_none() {
        sync.master_key_file = Some(tenantry_kit::seal::master::dev_master_key("sync")?);
    }
    if orchestration.master_key_file.is_none() {
        orchestration.master_key_file =
            Some(tenantry_kit::seal::master::dev_master_key("orchestration")?);
    }
    let (admin_email, admin_password) = (
        auth.bootstrap_admin_email.clone(),
        auth.bootstrap_admin_password_file.clone(),
    );
    let base_domain = gateway.base_domain.clone();
    // Auth first: the others verify tokens through its JWKS.
    let auth = start(&common, AuthService::new(auth)).await?;
    // Billing's credential takes the auth service's API: made now, before billing starts.
    let admin = admin_email.as_deref().zip(admin_password.as_deref());
    let billing_credential =
        credential::give_billing(&mut billing, local_url(auth.addr), admin).await;
    let tenant = start(&common, TenantService::new(tenant)).await?;
    // Billing suspends tenants through the tenant service started here.
    billing.tenant_endpoint = local_url(tenant.addr);
    let billing = start(&common, BillingService::new(billing)).await?;
    let orchestration = start(&common, OrchestrationService::new(orchestration)).await?;
    let sync = start(&common, SyncService::new(sync)).await?;
    let gateway = start(&common, GatewayService::new(gateway)).await?;
    eprintln!("\ntenantry dev is running (Ctrl-C stops it)");
    eprintln!(
        "  auth service     grpc+http://{}   (/.well-known/jwks.json)",
        auth.addr
    );
    eprintln!(
        "  tenant service   grpc+http://{}   (/healthz /readyz /metrics)",
        tenant.addr
    );
    eprintln!(
        "  billing service  grpc+http://{}   (/healthz /readyz /metrics)",
        billing.addr
    );
    eprintln!(
        "  orchestration    grpc+http://{}   (/healthz /readyz /metrics; process runtime)",
        orchestration.addr
    );
    eprintln!(
        "  sync service     grpc+http://{}   (/healthz /readyz /metrics)",
        sync.addr
    );
    eprintln!(
        "  gateway          http://{}   (tenants at <slug>.{base_domain}; config API and edge grpc://{}; /metrics on http://{})",
        gateway.data_addr, gateway.addr, gateway.metrics_addr
    );
    eprintln!("  billing          {billing_credential}");
    match &common.nats_credentials_dir {
        Some(dir) => eprintln!(
            "  nats             {} as each service's own user (passwords in {})",
            common.nats_url,
            dir.display()
        ),
        None => eprintln!(
            "  nats             {} without credentials (run scripts/infra-up.sh, or set TENANTRY_NATS_CREDENTIALS_DIR)",
            common.nats_url
        ),
    }
    eprintln!(
        "  outbound policy  {} allowed for tenants' backends and identity providers{}; the platform's own ports stay refused",
        common.egress_allow,
        if loopback_added {
            " (loopback: development only, TENANTRY_EGRESS_ALLOW overrides)"
        } else {
            " (TENANTRY_EGRESS_ALLOW)"
        }
    );
    if let (Some(email), Some(file)) = (admin_email, admin_password) {
        eprintln!(
            "\nPlatform admin {email}; a token for it:\n  export TENANTRY_TOKEN=$(tenantry login --email {email} --password-file {})\n",
            file.display()
        );
    }
    tenantry_kit::server::shutdown_signal().await;
    for stop in [
        auth.stop_handle(),
        tenant.stop_handle(),
        billing.stop_handle(),
        orchestration.stop_handle(),
        sync.stop_handle(),
        gateway.stop_handle(),
    ] {
        stop.stop();
    }
    let _ = tokio::join!(
        auth.task,
        tenant.task,
        billing.task,
        orchestration.task,
        sync.task,
        gateway.task
    );
    Ok(())
}

/// `http://` and the address a service listens on, reached on loopback if it listens on
/// every interface.
fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Starts `service` on its configured port, through the same template as its own binary.
async fn start<S: Service>(
    common: &CommonConfig,
    service: S,
) -> anyhow::Result<Running<S::Handle>> {
    let listen = service.listen();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("{} service: listen on {listen}", S::NAME))?;
    service::run(common, service, listener, std::future::pending())
        .await
        .with_context(|| format!("{} service did not start", S::NAME))
}
