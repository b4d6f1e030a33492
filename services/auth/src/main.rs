//! `tenantry-auth`: the auth service on its own.

use clap::Parser;
use tenantry_auth::AuthConfig;
use tenantry_kit::config::CommonConfig;

#[derive(Parser)]
#[command(name = "tenantry-auth", about = "Tenantry auth service")]
struct Args {
    #[command(flatten)]
    common: CommonConfig,
    #[command(flatten)]
    auth: AuthConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = tenantry_kit::telemetry::init("tenantry-auth", args.common.log_format)?;
    let listener = tokio::net::TcpListener::bind(args.auth.listen).await?;
    let running = tenantry_auth::start(
        &args.common,
        &args.auth,
        listener,
        Default::default(),
        tenantry_kit::server::shutdown_signal(),
    )
    .await?;
    running.task.await?;
    Ok(())
}
