//! `tenantry`: run Tenantry for development, and call any of its RPCs.
//!
//! # Layout
//! - [`dev`]: every built service in one process, with a development admin.
//! - [`login`]: a session with the auth service, printing the access token.
//! - `tenantry <service> <rpc> …`: generated from the services' descriptors at start
//!   (the `tenantry_cli` library).

mod dev;
mod login;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tenantry_auth::AuthConfig;
use tenantry_billing::BillingConfig;
use tenantry_cli::{Catalog, commands};
use tenantry_gateway::GatewayConfig;
use tenantry_kit::config::CommonConfig;
use tenantry_orchestration::OrchestrationConfig;
use tenantry_sync::SyncConfig;
use tenantry_tenant::TenantConfig;

#[derive(Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Tenantry: a control plane for multi-tenant SaaS",
    after_help = "Every service's RPCs: `tenantry <service> <rpc> --field value …` \
                  (`tenantry <service> --help` lists them). Calls go to the gateway's public \
                  API edge (http://127.0.0.1:7000) unless --endpoint or TENANTRY_ENDPOINT say \
                  otherwise; TENANTRY_TOKEN holds the bearer token."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once: the size of the `dev` settings does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Start every built service in one process (run `just infra-up` first).
    Dev {
        #[command(flatten)]
        common: CommonConfig,
        #[command(flatten)]
        auth: AuthConfig,
        #[command(flatten)]
        tenant: TenantConfig,
        #[command(flatten)]
        billing: BillingConfig,
        #[command(flatten)]
        gateway: GatewayConfig,
        #[command(flatten)]
        orchestration: OrchestrationConfig,
        #[command(flatten)]
        sync: SyncConfig,
    },
    /// Log in with e-mail and password; prints the access token.
    Login(login::LoginArgs),
    /// Follow a tenant's orchestration events (pods, health, updates, autoscaling) as they
    /// happen.
    Events(tenantry_cli::events::EventsArgs),
}

/// The whole command line: the hand-made commands and one per service of `catalog`.
fn command(catalog: &Catalog) -> clap::Command {
    commands::add_services(Cli::command(), catalog)
}

#[tokio::main]
async fn main() -> ExitCode {
    let catalog = match Catalog::builtin() {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let matches = command(&catalog).get_matches();
    if let Some((name, matches)) = matches.subcommand()
        && let Some(service) = catalog.service(name)
    {
        return match tenantry_cli::run(service, matches).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let done = match cli.command {
        Command::Dev {
            common,
            auth,
            tenant,
            billing,
            gateway,
            orchestration,
            sync,
        } => dev::run(common, auth, tenant, billing, gateway, orchestration, sync).await,
        Command::Login(args) => login::run(args).await,
        Command::Events(args) => tenantry_cli::events::follow(&args, &mut std::io::stdout())
            .await
            .map_err(anyhow::Error::from),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every service's settings and every generated RPC command fit in one command line
    /// without clashing.
    #[test]
    fn the_command_line_is_well_formed() {
        let catalog = tenantry_cli::Catalog::builtin().unwrap();
        super::command(&catalog).debug_assert();
    }
}
