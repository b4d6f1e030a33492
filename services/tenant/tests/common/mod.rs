//! Starting the tenant service in-process for a test, on the real NATS and Postgres.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::TimeZone;
use tenantry_kit::service::Running;
use tenantry_kit::{Clock, ManualClock, Role};
use tenantry_proto::tenant::v1::tenant_service_client::TenantServiceClient;
use tenantry_proto::tenant::v1::{self as api};
use tenantry_tenant::api::domains::DomainProver;
use tenantry_tenant::{Handle, TenantConfig, TenantService};
use tenantry_testkit::TestEnv;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

pub struct Harness {
    pub svc: Running<Handle>,
    pub clock: ManualClock,
    pub channel: Channel,
    pub env: TestEnv,
}

pub fn config() -> TenantConfig {
    TenantConfig::ephemeral()
}

pub async fn start() -> Harness {
    start_with(None).await
}

pub async fn start_with(prover: Option<Arc<dyn DomainProver>>) -> Harness {
    let env = TestEnv::new().await;
    let clock = ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
    let svc = env
        .start(TenantService {
            config: config(),
            clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
            prover,
        })
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    Harness {
        svc,
        clock,
        channel,
        env,
    }
}

/// Attaches a bearer token (or none) to a request.
pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

impl Harness {
    pub fn client(&self) -> TenantServiceClient<Channel> {
        TenantServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> String {
        self.env.admin_token()
    }

    pub fn token(&self, tenant: Uuid, role: Role) -> String {
        self.env.token(Some(tenant), role)
    }

    /// Creates a tenant as a platform admin and returns it with the command's position.
    pub async fn create(
        &self,
        slug: &str,
        kind: tenantry_proto::events::v1::TenantType,
    ) -> (api::Tenant, u64) {
        let request = api::CreateTenantRequest {
            name: format!("Tenant {slug}"),
            slug: slug.into(),
            r#type: kind as i32,
            settings: None,
        };
        let created = self
            .client()
            .create_tenant(with_token(request, Some(&self.admin())))
            .await
            .expect("create tenant")
            .into_inner();
        (created.tenant.unwrap(), created.position)
    }

    pub async fn last_position(&self) -> u64 {
        self.env.event_store().await.last_position().await.unwrap()
    }
}

/// A prover that finds every domain at `addr` (the customer's web server, which tests run on
/// loopback), under `policy`.
pub fn prover_at(
    addr: std::net::SocketAddr,
    policy: tenantry_kit::egress::EgressPolicy,
) -> Arc<dyn DomainProver> {
    use tenantry_kit::egress::{Egress, OutboundHttp, StaticResolver};
    let resolver = StaticResolver::new().others(&[addr]);
    let http = OutboundHttp::new(
        Arc::new(Egress::new(policy, Arc::new(resolver))),
        tenantry_tenant::api::domains::proof_limits(),
    )
    .unwrap();
    Arc::new(tenantry_tenant::api::domains::HttpProver::new(http))
}

/// The outbound policy with loopback allowed explicitly (tests' servers live there).
pub fn loopback_allowed() -> tenantry_kit::egress::EgressPolicy {
    tenantry_kit::egress::EgressPolicy::new(
        vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        vec![],
    )
}

pub fn slug() -> String {
    format!("t-{}", &Uuid::new_v4().simple().to_string()[..10])
}
