//! Starting the auth service in-process for a test, on the real NATS and Postgres, with a
//! bootstrap platform admin, and helpers to make users with roles in tenants.

#![allow(dead_code)]

pub mod oidc;

use std::sync::Arc;
use tenantry_auth::{AuthConfig, AuthService, Handle};
use tenantry_kit::service::{Running, Service};
use tenantry_proto::auth::v1::{
    self as api, identity_provider_service_client::IdentityProviderServiceClient,
    key_service_client::KeyServiceClient, member_service_client::MemberServiceClient,
    service_account_service_client::ServiceAccountServiceClient,
    session_service_client::SessionServiceClient,
};

use tenantry_kit::Clock;
use tenantry_testkit::TestEnv;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "root@tenantry.test";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-passphrase";
pub const PASSWORD: &str = "blue-kettle-orbit-42";

pub struct Harness {
    pub svc: Running<Handle>,
    pub channel: Channel,
    pub config: AuthConfig,
    pub env: TestEnv,
}

/// The file holding [`ADMIN_PASSWORD`], the bootstrap admin's password.
pub fn admin_password_file(env: &TestEnv) -> std::path::PathBuf {
    std::env::temp_dir().join(&env.id).join("admin.password")
}

pub fn config(env: &TestEnv) -> AuthConfig {
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("master.key");
    std::fs::write(&key, "B2kq3G8p0xZl9Yb2gV7m1Q5sR4tU6wXyZaBcDeFgHiI=").unwrap();
    let password = admin_password_file(env);
    std::fs::write(&password, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let mut config = AuthConfig::ephemeral(key);
    // Tests make users freely from one address; the attack tests set the limit they test.
    config.signups_per_addr = 1000;
    config.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
    config.bootstrap_admin_password_file = Some(password);
    config
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut AuthConfig)) -> Harness {
    start_full(adjust, Arc::new(tenantry_kit::SystemClock)).await
}

/// With a clock the test moves (tokens it issues then carry that clock's times).
pub async fn start_with_clock(clock: tenantry_kit::ManualClock) -> Harness {
    start_full(|_| {}, Arc::new(clock)).await
}

pub async fn start_full(adjust: impl FnOnce(&mut AuthConfig), clock: Arc<dyn Clock>) -> Harness {
    start_with_common(allow_loopback, adjust, clock).await
}

/// The identity providers tests start listen on loopback, which the default outbound policy
/// refuses: tests allow it explicitly.
pub fn allow_loopback(common: &mut tenantry_kit::config::CommonConfig) {
    common.egress_allow = "127.0.0.0/8,::1/128".parse().unwrap();
}

/// With the shared settings (the outbound policy) as `adjust_common` leaves them.
pub async fn start_with_common(
    adjust_common: impl FnOnce(&mut tenantry_kit::config::CommonConfig),
    adjust: impl FnOnce(&mut AuthConfig),
    clock: Arc<dyn Clock>,
) -> Harness {
    let env = TestEnv::new().await;
    let mut config = config(&env);
    adjust(&mut config);
    let mut common = env.common();
    adjust_common(&mut common);
    let svc = env
        .start_with(
            &common,
            AuthService {
                config: config.clone(),
                clock,
            },
        )
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    Harness {
        svc,
        channel,
        config,
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

pub fn email() -> String {
    format!(
        "u{}@example.com",
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A user with a role in a tenant, and their session.
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

impl Harness {
    pub fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }
    pub fn members(&self) -> MemberServiceClient<Channel> {
        MemberServiceClient::new(self.channel.clone())
    }
    pub fn accounts(&self) -> ServiceAccountServiceClient<Channel> {
        ServiceAccountServiceClient::new(self.channel.clone())
    }
    pub fn providers(&self) -> IdentityProviderServiceClient<Channel> {
        IdentityProviderServiceClient::new(self.channel.clone())
    }
    pub fn keys(&self) -> KeyServiceClient<Channel> {
        KeyServiceClient::new(self.channel.clone())
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
        tenant: Option<Uuid>,
    ) -> Result<api::SessionResponse, tonic::Status> {
        self.sessions()
            .login(api::LoginRequest {
                email: email.into(),
                password: password.into(),
                tenant_id: tenant.map(|t| t.to_string()).unwrap_or_default(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// A platform-admin token (the bootstrap admin, no tenant).
    pub async fn admin(&self) -> String {
        let s = self
            .login(ADMIN_EMAIL, ADMIN_PASSWORD, None)
            .await
            .expect("admin login");
        assert!(s.platform_admin);
        s.access_token
    }

    pub async fn sign_up(&self, email: &str) -> api::SessionResponse {
        self.sessions()
            .sign_up(api::SignUpRequest {
                email: email.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("sign up")
            .into_inner()
    }

    /// Signs a new user up, makes them `role` in `tenant` (as platform admin) and logs them in
    /// to that tenant.
    pub async fn member(&self, tenant: Uuid, role: api::Role) -> Member {
        let email = email();
        let user = self.sign_up(&email).await;
        let admin = self.admin().await;
        self.members()
            .add_member(with_token(
                api::AddMemberRequest {
                    tenant_id: tenant.to_string(),
                    user_id: user.user_id.clone(),
                    role: role as i32,
                },
                Some(&admin),
            ))
            .await
            .expect("add member");
        let s = self
            .login(&email, PASSWORD, Some(tenant))
            .await
            .expect("member login");
        assert_eq!(s.tenant_id, tenant.to_string());
        Member {
            user_id: Uuid::parse_str(&user.user_id).unwrap(),
            email,
            token: s.access_token,
            refresh: s.refresh_token,
        }
    }

    pub async fn last_position(&self) -> u64 {
        self.env.event_store().await.last_position().await.unwrap()
    }

    /// Starts another auth replica on this test's log and schema, with this harness's
    /// settings as `adjust` changes them; the error if it refuses to start.
    pub async fn start_replica(
        &self,
        adjust: impl FnOnce(&mut AuthConfig),
    ) -> Result<Running<Handle>, tenantry_kit::service::StartError> {
        let mut config = self.config.clone();
        adjust(&mut config);
        self.env
            .try_start_with(&self.env.common(), AuthService::new(config))
            .await
    }

    /// Every message of this test's event log as NATS holds it (what anyone who can read
    /// the stream sees): subject and raw bytes.
    pub async fn raw_log(&self) -> Vec<(String, Vec<u8>)> {
        let store = self.env.event_store().await;
        let stream = store
            .jetstream()
            .get_stream(&store.names().events_stream)
            .await
            .unwrap();
        let last = store.last_position().await.unwrap();
        let mut out = Vec::new();
        for seq in 1..=last {
            let m = stream.get_raw_message(seq).await.unwrap();
            out.push((m.subject.to_string(), m.payload.to_vec()));
        }
        out
    }
}
