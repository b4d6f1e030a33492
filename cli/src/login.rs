//! `tenantry login`: starts a session with the auth service and prints the access token.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tenantry_proto::auth::v1::{self as api, session_service_client::SessionServiceClient};

#[derive(Args)]
pub struct LoginArgs {
    #[arg(long)]
    email: String,
    /// File holding the password (else `TENANTRY_PASSWORD`).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Tenant to issue the token for; omitted, a platform admin gets a platform token and a
    /// user with one membership a token for it.
    #[arg(long)]
    tenant: Option<String>,
    /// Auth service address.
    #[arg(
        long,
        env = "TENANTRY_AUTH_ENDPOINT",
        default_value = "http://127.0.0.1:7002"
    )]
    auth_endpoint: String,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let password = match &args.password_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("read {}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        None => std::env::var("TENANTRY_PASSWORD")
            .context("give --password-file or set TENANTRY_PASSWORD")?,
    };
    let mut client = SessionServiceClient::connect(args.auth_endpoint.clone())
        .await
        .with_context(|| format!("connect to {}", args.auth_endpoint))?;
    let session = client
        .login(api::LoginRequest {
            email: args.email,
            password,
            tenant_id: args.tenant.unwrap_or_default(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    if session.access_token.is_empty() {
        eprintln!("member of several tenants; choose one with --tenant:");
        for m in &session.memberships {
            eprintln!("  {}", m.tenant_id);
        }
        anyhow::bail!("no tenant chosen");
    }
    println!("{}", session.access_token);
    Ok(())
}
