//! `tenantry-tenant`: the tenant service on its own.

use clap::Parser;
use tenantry_kit::config::CommonConfig;
use tenantry_tenant::TenantConfig;

#[derive(Parser)]
#[command(name = "tenantry-tenant", about = "Tenantry tenant service")]
struct Args {
    #[command(flatten)]
    common: CommonConfig,
    #[command(flatten)]
    tenant: TenantConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = tenantry_kit::telemetry::init("tenantry-tenant", args.common.log_format)?;
    let listener = tokio::net::TcpListener::bind(args.tenant.listen).await?;
    let running = tenantry_tenant::start(
        &args.common,
        &args.tenant,
        listener,
        Default::default(),
        tenantry_kit::server::shutdown_signal(),
    )
    .await?;
    running.task.await?;
    Ok(())
}
