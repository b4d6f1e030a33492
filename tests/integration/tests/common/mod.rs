//! Starting the tenant service in-process for an end-to-end test.

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
    let channel = Channel::from_shared(format!("http://{}", svc.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (svc, channel)
}
