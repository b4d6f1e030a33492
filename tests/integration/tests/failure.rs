//! NATS down: commands fail `UNAVAILABLE` within the store's timeout and nothing is written;
//! when NATS returns, commands succeed again. Uses a private nats-server (the real binary) so
//! stopping it disturbs no other test.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tenantry_proto::events::v1::TenantType;
use tenantry_proto::tenant::v1::{self as api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::TestEnv;

/// Without authentication: the services still send their users' passwords, which such a
/// server ignores; what each user may do is tested on the shared server (attacks_bus.rs).
fn nats_server(port: u16, dir: &std::path::Path) -> Child {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
    Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is installed (scripts/infra-up.sh)")
}

async fn wait_listening(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nats-server did not start on {port}");
}

fn create(slug: &str, token: &str) -> tonic::Request<api::CreateTenantRequest> {
    let mut r = tonic::Request::new(api::CreateTenantRequest {
        name: "Outage".into(),
        slug: slug.into(),
        r#type: TenantType::Business as i32,
        settings: None,
    });
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

#[tokio::test]
async fn nats_down_means_unavailable_and_nothing_written() {
    let env = TestEnv::new().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("{}-nats", env.id));
    let mut nats = nats_server(port, &dir);
    wait_listening(port).await;

    let mut settings = env.common();
    settings.nats_url = format!("nats://127.0.0.1:{port}");
    let (_svc, channel) = common::start_tenant(&env, &settings).await;
    let mut client = TenantServiceClient::new(channel);
    let token = env.admin_token();
    client
        .create_tenant(create("before-outage", &token))
        .await
        .expect("works while NATS is up");

    nats.kill().unwrap();
    nats.wait().unwrap();
    let started = Instant::now();
    let status = client
        .create_tenant(create("during-outage", &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );

    // Back up (same store directory): the failed command left nothing; a new one succeeds.
    let mut nats = nats_server(port, &dir);
    wait_listening(port).await;
    let store = tenantry_eventstore::EventStore::open(
        async_nats::connect(&settings.nats_url).await.unwrap(),
        tenantry_eventstore::StreamNames::new(settings.stream_prefix.as_deref()).unwrap(),
        1,
    )
    .await
    .unwrap();
    let before = store.last_position().await.unwrap();
    assert_eq!(
        before, 2,
        "only the first tenant's slug claim and creation are stored"
    );
    let mut recovered = None;
    for _ in 0..50 {
        match client.create_tenant(create("after-outage", &token)).await {
            Ok(ok) => {
                recovered = Some(ok.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert!(
        recovered.is_some(),
        "commands succeed again once NATS is back"
    );
    nats.kill().unwrap();
    nats.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
