//! Starting services in-process for an end-to-end test, through the kit's service template.

#![allow(dead_code)]

use tenantry_kit::config::CommonConfig;
use tenantry_kit::service::{Running, Service};
use tenantry_tenant::{TenantConfig, TenantService};
use tenantry_testkit::TestEnv;
use tonic::transport::Channel;

/// The tenant service with `common` settings, in `env`, and a channel to it.
pub async fn start_tenant(
    env: &TestEnv,
    common: &CommonConfig,
) -> (Running<tenantry_tenant::Handle>, Channel) {
    let svc = env
        .start_with(common, TenantService::new(TenantConfig::ephemeral()))
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}

pub const ADMIN_EMAIL: &str = "root@tenantry.test";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-passphrase";

/// The auth service's settings in `env`, with a bootstrap platform admin.
pub fn auth_config(env: &TestEnv) -> tenantry_auth::AuthConfig {
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("master.key");
    std::fs::write(&key, "B2kq3G8p0xZl9Yb2gV7m1Q5sR4tU6wXyZaBcDeFgHiI=").unwrap();
    let password = dir.join("admin.password");
    std::fs::write(&password, ADMIN_PASSWORD).unwrap();
    let mut config = tenantry_auth::AuthConfig::ephemeral(key);
    config.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
    config.bootstrap_admin_password_file = Some(password);
    config
}

/// The auth service with a bootstrap platform admin, in `env`, and a channel to it.
pub async fn start_auth(env: &TestEnv) -> (Running<tenantry_auth::Handle>, Channel) {
    let svc = env
        .start(tenantry_auth::AuthService::new(auth_config(env)))
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}

/// The billing service with `common` settings, in `env`, and a channel to it.
pub async fn start_billing(
    env: &TestEnv,
    common: &CommonConfig,
) -> (Running<tenantry_billing::Handle>, Channel) {
    start_billing_with(env, common, tenantry_billing::BillingConfig::ephemeral()).await
}

/// The billing service with its own settings `config` (its credential, say).
pub async fn start_billing_with(
    env: &TestEnv,
    common: &CommonConfig,
    config: tenantry_billing::BillingConfig,
) -> (Running<tenantry_billing::Handle>, Channel) {
    let svc = env
        .start_with(common, tenantry_billing::BillingService::new(config))
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}

/// A gateway with `common` settings in `env`; the channel reaches its configuration API.
pub async fn start_gateway(
    env: &TestEnv,
    common: &CommonConfig,
    config: tenantry_gateway::GatewayConfig,
) -> (Running<tenantry_gateway::Handle>, Channel) {
    let svc = env
        .start_with(common, tenantry_gateway::GatewayService::new(config))
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}

/// Signs `email` up (password `blue-kettle-orbit-42`), makes them an owner of `tenant_id` as
/// the platform `admin`, and returns their access token for that tenant.
pub async fn owner_of(
    sessions: &tenantry_proto::auth::v1::session_service_client::SessionServiceClient<Channel>,
    members: &tenantry_proto::auth::v1::member_service_client::MemberServiceClient<Channel>,
    admin: &str,
    tenant_id: &str,
    email: &str,
) -> String {
    use tenantry_proto::auth::v1 as auth;
    const PASSWORD: &str = "blue-kettle-orbit-42";
    let (mut sessions, mut members) = (sessions.clone(), members.clone());
    let user = sessions
        .sign_up(auth::SignUpRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut add = tonic::Request::new(auth::AddMemberRequest {
        tenant_id: tenant_id.into(),
        user_id: user.user_id,
        role: auth::Role::Owner as i32,
    });
    add.metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    members.add_member(add).await.unwrap();
    sessions
        .login(auth::LoginRequest {
            email: email.into(),
            password: PASSWORD.into(),
            tenant_id: tenant_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

/// The sync service with `common` settings, in `env` (its master key in the test world's
/// directory), and a channel to it.
pub async fn start_sync(
    env: &TestEnv,
    common: &CommonConfig,
) -> (Running<tenantry_sync::Handle>, Channel) {
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("sync-master.key");
    std::fs::write(&key, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
    let svc = env
        .start_with(
            common,
            tenantry_sync::SyncService::new(tenantry_sync::SyncConfig::ephemeral(key)),
        )
        .await;
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}
