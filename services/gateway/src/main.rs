//! `tenantry-gateway`: the gateway on its own.

use clap::Parser;
use mimalloc::MiMalloc;
use tenantry_gateway::GatewayConfig;
use tenantry_kit::config::CommonConfig;

#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(name = "tenantry-gateway", about = "Tenantry gateway (data plane)")]
struct Args {
    #[command(flatten)]
    common: CommonConfig,
    #[command(flatten)]
    gateway: GatewayConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = tenantry_kit::telemetry::init("tenantry-gateway", args.common.log_format)?;
    let listener = tokio::net::TcpListener::bind(args.gateway.listen).await?;
    let api_listener = tokio::net::TcpListener::bind(args.gateway.api_listen).await?;
    let running = tenantry_gateway::start(
        &args.common,
        &args.gateway,
        listener,
        api_listener,
        Default::default(),
        tenantry_kit::server::shutdown_signal(),
    )
    .await?;
    running.task.await?;
    Ok(())
}
