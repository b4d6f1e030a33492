//! `tenantry`: run Tenantry for development, and call its APIs.
//!
//! # Layout
//! - [`dev`]: every built service in one process, with a development admin.
//! - [`login`]: a session with the auth service, printing the access token.
//! - [`client`]: subcommands that call the tenant API.

mod client;
mod dev;
mod login;

use clap::{Parser, Subcommand};
use tenantry_auth::AuthConfig;
use tenantry_gateway::GatewayConfig;
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
        gateway: GatewayConfig,
    },
    /// Log in with e-mail and password; prints the access token.
    Login(login::LoginArgs),
    /// Tenant API calls.
    #[command(subcommand)]
    Tenant(client::TenantCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Dev {
            common,
            auth,
            tenant,
            gateway,
        } => dev::run(common, auth, tenant, gateway).await,
        Command::Login(args) => login::run(args).await,
        Command::Tenant(command) => client::run(command).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every service's settings fit in one command line without clashing.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
