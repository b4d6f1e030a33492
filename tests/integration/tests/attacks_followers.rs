//! Issue 17, item 15: state a service keeps in memory from the log (the API-key directory here)
//! went on serving after its subscription was lost. NATS restarts (its ephemeral consumers are
//! gone); the service reported ready at once, while its directory was frozen for many seconds
//! and a key revoked then stayed valid. Now `/readyz` says not ready until every follower has
//! reopened its tail, and a revocation made once it is ready applies within moments.

mod common;

use std::time::{Duration, Instant};

use tenantry_contracts::auth::ServiceAccountEvent;
use tenantry_proto::events::v1 as pb;
use tenantry_proto::tenant::v1 as tenant;
use tenantry_testkit::{NatsServer, TestEnv, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

async fn readyz(addr: std::net::SocketAddr) -> u16 {
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let request = "GET /readyz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer).await;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Appends one of the auth service's `service_accounts` events for `tenant`, as it would.
async fn append(store: &tenantry_eventstore::EventStore, tenant: Uuid, event: ServiceAccountEvent) {
    let tenant = tenant.to_string();
    tenantry_testkit::append(store, &tenant, &tenant, event)
        .await
        .unwrap();
}

#[tokio::test]
async fn attack_a_revoked_key_stays_valid_while_a_follower_is_stale_after_a_nats_restart() {
    let mut nats = NatsServer::start().await;
    let env = TestEnv::new().await;
    let mut settings = env.common();
    settings.nats_url = nats.url();
    let (svc, channel) = common::start_tenant(&env, &settings).await;
    let store = tenantry_eventstore::EventStore::open(
        async_nats::connect(nats.url()).await.unwrap(),
        tenantry_eventstore::StreamNames::new(settings.stream_prefix.as_deref()).unwrap(),
        1,
    )
    .await
    .unwrap();

    // A viewer API key of a tenant, as the auth service records one.
    let tenant_id = Uuid::now_v7();
    let account = Uuid::now_v7();
    let key = format!("tk_{}", Uuid::new_v4().simple());
    append(
        &store,
        tenant_id,
        ServiceAccountEvent::AccountCreated(pb::ServiceAccountCreated {
            service_account_id: account.to_string(),
            name: "ci".into(),
            role: "viewer".into(),
        }),
    )
    .await;
    append(
        &store,
        tenant_id,
        ServiceAccountEvent::ApiKeyCreated(pb::ApiKeyCreated {
            service_account_id: account.to_string(),
            key_id: "k1".into(),
            prefix: key[..8].into(),
            key_digest: tenantry_kit::auth::api_keys::digest(&key),
            name: "ci".into(),
        }),
    )
    .await;
    let client = tenant::tenant_service_client::TenantServiceClient::new(channel);
    let list = || {
        let (mut client, key) = (client.clone(), key.clone());
        async move {
            let mut request = tonic::Request::new(tenant::ListTenantsRequest::default());
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
            client.list_tenants(request).await.map(|_| ())
        }
    };
    eventually("the key works", Duration::from_secs(5), || async {
        list().await.ok()
    })
    .await;

    // NATS restarts: the service's consumers are gone with it.
    nats.stop();
    eventually(
        "not ready without NATS",
        Duration::from_secs(10),
        || async { (readyz(svc.addr).await == 503).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    nats.resume().await;
    eventually("ready again", Duration::from_secs(30), || async {
        (readyz(svc.addr).await == 200).then_some(())
    })
    .await;

    // Ready means its in-memory state follows the log again: a revocation applies at once.
    let store = tenantry_eventstore::EventStore::open(
        async_nats::connect(nats.url()).await.unwrap(),
        tenantry_eventstore::StreamNames::new(settings.stream_prefix.as_deref()).unwrap(),
        1,
    )
    .await
    .unwrap();
    append(
        &store,
        tenant_id,
        ServiceAccountEvent::ApiKeyRevoked(pb::ApiKeyRevoked {
            key_id: "k1".into(),
        }),
    )
    .await;
    let revoked_at = Instant::now();
    let refused = loop {
        match list().await {
            Err(e) if e.code() == tonic::Code::Unauthenticated => break true,
            _ if revoked_at.elapsed() > Duration::from_secs(3) => break false,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(
        refused,
        "a key revoked after the service said it was ready still works 3 s later"
    );
}
