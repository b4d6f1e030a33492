//! `tenantry`: run Tenantry for development, and call its APIs.
//!
//! # Layout
//! - `dev`: every built service in one process, with a development signing key.
//! - [`devkeys`]: the development key set under `.tenantry/dev/` and tokens signed with it.
//! - [`client`]: subcommands that call the tenant API.

mod client;
mod devkeys;

use clap::{Parser, Subcommand};
use tenantry_kit::config::CommonConfig;
use tenantry_tenant::TenantConfig;

#[derive(Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Tenantry: a control plane for multi-tenant SaaS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start NATS/Postgres-backed services in one process (run `just infra-up` first).
    Dev {
        #[command(flatten)]
        common: CommonConfig,
        #[command(flatten)]
        tenant: TenantConfig,
    },
    /// Create the development key set (if missing) and print a platform-admin token.
    DevKeys,
    /// Print a development token for a tenant and role, signed with the development key.
    Token {
        /// Tenant id; omit for a platform-admin token.
        #[arg(long)]
        tenant: Option<String>,
        /// viewer, member, owner or platform_admin.
        #[arg(long, default_value = "platform_admin")]
        role: String,
    },
    /// Tenant API calls.
    #[command(subcommand)]
    Tenant(client::TenantCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Dev { common, tenant } => dev(common, tenant).await,
        Command::DevKeys => {
            let key = devkeys::ensure()?;
            println!("{}", devkeys::token(&key, None, "platform_admin")?);
            Ok(())
        }
        Command::Token { tenant, role } => {
            let key = devkeys::ensure()?;
            println!("{}", devkeys::token(&key, tenant.as_deref(), &role)?);
            Ok(())
        }
        Command::Tenant(command) => client::run(command).await,
    }
}

async fn dev(common: CommonConfig, tenant: TenantConfig) -> anyhow::Result<()> {
    let _telemetry = tenantry_kit::telemetry::init("tenantry-dev", common.log_format)?;
    let key = devkeys::ensure()?;
    let mut common = common;
    if common.jwks == devkeys::DEFAULT_JWKS {
        common.jwks = devkeys::jwks_path().display().to_string();
    }
    let listener = tokio::net::TcpListener::bind(tenant.listen).await?;
    let running = tenantry_tenant::start(
        &common,
        &tenant,
        listener,
        Default::default(),
        tenantry_kit::server::shutdown_signal(),
    )
    .await?;
    let admin = devkeys::token(&key, None, "platform_admin")?;
    eprintln!("\ntenantry dev is running (Ctrl-C stops it)");
    eprintln!(
        "  tenant service   grpc+http://{}   (/healthz /readyz /metrics)",
        running.addr
    );
    eprintln!("  not built yet    auth, billing, orchestration, sync, gateway");
    eprintln!("\nA platform-admin token for development (8 h):\n  export TENANTRY_TOKEN={admin}\n");
    running.task.await?;
    Ok(())
}
