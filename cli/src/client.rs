//! Calls to the tenant API. The endpoint and token come from flags or `TENANTRY_ENDPOINT` /
//! `TENANTRY_TOKEN`.

use clap::{Args, Subcommand};
use tenantry_proto::events::v1::TenantType;
use tenantry_proto::tenant::v1::{self as api, tenant_service_client::TenantServiceClient};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

#[derive(Args)]
pub struct Connection {
    /// Tenant service address.
    #[arg(
        long,
        env = "TENANTRY_ENDPOINT",
        default_value = "http://127.0.0.1:7001"
    )]
    endpoint: String,
    /// Bearer token (`tenantry token` prints one for development).
    #[arg(long, env = "TENANTRY_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (platform admin).
    Create {
        #[command(flatten)]
        conn: Connection,
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: String,
        /// enterprise, business or trial.
        #[arg(long = "type", default_value = "trial")]
        kind: String,
    },
    /// Show a tenant.
    Get {
        #[command(flatten)]
        conn: Connection,
        tenant_id: String,
    },
    /// List the tenants the token can see.
    List {
        #[command(flatten)]
        conn: Connection,
    },
}

fn request<T>(conn: &Connection, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {}", conn.token).parse()?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

async fn client(conn: &Connection) -> anyhow::Result<TenantServiceClient<Channel>> {
    Ok(TenantServiceClient::connect(conn.endpoint.clone()).await?)
}

pub async fn run(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            conn,
            name,
            slug,
            kind,
        } => {
            let kind = TenantType::from_str_name(&format!("TENANT_TYPE_{}", kind.to_uppercase()))
                .ok_or_else(|| {
                anyhow::anyhow!("--type must be enterprise, business or trial")
            })?;
            let message = api::CreateTenantRequest {
                name,
                slug,
                r#type: kind as i32,
                settings: None,
            };
            let created = client(&conn)
                .await?
                .create_tenant(request(&conn, message)?)
                .await?
                .into_inner();
            println!(
                "{:#?}\nposition: {}",
                created.tenant.unwrap_or_default(),
                created.position
            );
        }
        TenantCommand::Get { conn, tenant_id } => {
            let message = api::GetTenantRequest {
                tenant_id,
                min_position: 0,
            };
            let got = client(&conn)
                .await?
                .get_tenant(request(&conn, message)?)
                .await?
                .into_inner();
            println!("{:#?}", got.tenant.unwrap_or_default());
        }
        TenantCommand::List { conn } => {
            let mut token = String::new();
            let mut c = client(&conn).await?;
            loop {
                let message = api::ListTenantsRequest {
                    page_size: 100,
                    page_token: token,
                    min_position: 0,
                };
                let page = c.list_tenants(request(&conn, message)?).await?.into_inner();
                for t in &page.tenants {
                    println!(
                        "{}  {:<24} {:<10} {}",
                        t.tenant_id,
                        t.slug,
                        TenantType::try_from(t.r#type)
                            .map(|k| k.as_str_name())
                            .unwrap_or("?"),
                        t.name
                    );
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
    }
    Ok(())
}
