//! Starting the tenant service in-process for an end-to-end test.

#![allow(dead_code)]

use tenantry_kit::config::CommonConfig;
use tenantry_tenant::{Overrides, Running, TenantConfig};
use tenantry_testkit::TestEnv;
use tonic::transport::Channel;

/// The tenant service with `common` settings, in `env`'s schema, and a channel to it.
pub async fn start_tenant(env: &TestEnv, common: &CommonConfig) -> (Running, Channel) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = TenantConfig::ephemeral(env.schema("tenant"));
    let svc = tenantry_tenant::start(
        common,
        &config,
        listener,
        Overrides::default(),
        std::future::pending(),
    )
    .await
    .expect("tenant service starts");
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}

pub const ADMIN_EMAIL: &str = "root@tenantry.test";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-passphrase";

/// The auth service with a bootstrap platform admin, in `env`'s schema, and a channel to it.
pub async fn start_auth(env: &TestEnv) -> (tenantry_auth::Running, Channel) {
    let dir = std::env::temp_dir().join(&env.id);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("master.key");
    std::fs::write(&key, "B2kq3G8p0xZl9Yb2gV7m1Q5sR4tU6wXyZaBcDeFgHiI=").unwrap();
    let password = dir.join("admin.password");
    std::fs::write(&password, ADMIN_PASSWORD).unwrap();
    let mut config = tenantry_auth::AuthConfig::ephemeral(env.schema("auth"), key);
    config.bootstrap_admin_email = Some(ADMIN_EMAIL.into());
    config.bootstrap_admin_password_file = Some(password);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let svc = tenantry_auth::start(
        &env.common(),
        &config,
        listener,
        tenantry_auth::Overrides::default(),
        std::future::pending(),
    )
    .await
    .expect("auth service starts");
    let channel = tenantry_testkit::channel(svc.addr).await;
    (svc, channel)
}

/// A gateway with `common` settings; the channel reaches its configuration API.
pub async fn start_gateway(common: &CommonConfig) -> (tenantry_gateway::Running, Channel) {
    let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let svc = tenantry_gateway::start(
        common,
        &tenantry_gateway::GatewayConfig::ephemeral(),
        data,
        api,
        tenantry_gateway::Overrides::default(),
        std::future::pending(),
    )
    .await
    .expect("gateway starts");
    let channel = tenantry_testkit::channel(svc.api_addr).await;
    (svc, channel)
}
