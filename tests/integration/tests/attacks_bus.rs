//! Attacks on the bus (issue 17 item 5, ADR 0009): NATS authenticates every client and lets
//! each service's user publish only its own aggregates and read only what it projects. Each
//! attack is made with a service's real credentials on the project's NATS, the way a
//! compromised service (or anyone holding its password) would try it.
//!
//! NATS answers a refused publish with an error on the connection and no reply at all, so a
//! refused JetStream request fails by timing out; each test also waits for the server's
//! `Permissions Violation` naming the subject, and checks the log is unchanged.

use std::time::Duration;

use tenantry_contracts::auth::{ServiceAccountEvent, UserEvent};
use tenantry_contracts::gateway::RouteEvent;
use tenantry_contracts::tenant::TenantEvent;
use tenantry_eventstore::aggregate::batch_of;
use tenantry_eventstore::subject::type_filter;
use tenantry_eventstore::{
    AggregateAddress, AppendRequest, CommandMeta, EventPayload, EventStore, PLATFORM_TENANT,
    StoreError, StreamNames,
};
use tenantry_proto::events::v1 as pb;
use tenantry_proto::tenant::v1::{self as tenant_api, tenant_service_client::TenantServiceClient};
use tenantry_testkit::{TestEnv, eventually};
use tokio::sync::mpsc;
use uuid::Uuid;

/// A connection as `user`, made as the kit makes a service's, and what the server refuses on
/// it (`Permissions Violation for Publish to "…"`).
async fn connect_watching(user: &str) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let dir = tenantry_testkit::nats_credentials_dir();
    let password = tenantry_kit::nats::read_password(&dir, user).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::new()
        .user_and_password(user.into(), password)
        .custom_inbox_prefix(tenantry_kit::nats::inbox_prefix(user))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(tenantry_testkit::nats_url())
        .await
        .unwrap();
    (client, rx)
}

/// Waits for the server to report a refused publish or subscription on `subject`.
async fn refused(refusals: &mut mpsc::UnboundedReceiver<String>, subject: &str) {
    let quoted = format!("\"{subject}\"");
    let waited = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(error) = refusals.recv().await {
            if error.contains("Permissions Violation") && error.contains(&quoted) {
                return;
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the server refuses {subject} with a permissions violation"
    );
}

/// The test world's streams opened on `client` (a service user may create and read them).
async fn store_on(env: &TestEnv, client: async_nats::Client) -> EventStore {
    let names = StreamNames::new(Some(&env.id)).unwrap();
    EventStore::open(client, names, 1).await.unwrap()
}

/// One message holding `event`, for `address`, as a command would append it.
fn request<E: EventPayload>(address: &AggregateAddress, event: E) -> AppendRequest {
    let meta = CommandMeta {
        command_id: Uuid::now_v7().to_string(),
        actor: "attacker".into(),
        correlation_id: Uuid::now_v7().to_string(),
        occurred_at: chrono::Utc::now(),
        traceparent: None,
        fingerprint: None,
    };
    AppendRequest {
        address: address.clone(),
        expected: None,
        message_id: meta.command_id.clone(),
        batch: batch_of(address, &[event], &meta),
        traceparent: None,
        fingerprint: None,
    }
}

/// Appends `event` to `address` as `user`; asserts the server refuses it and the log (read
/// as the operator) holds nothing for that aggregate.
async fn assert_append_refused<E: EventPayload>(
    env: &TestEnv,
    user: &str,
    address: AggregateAddress,
    event: E,
) {
    let operator = env.event_store().await;
    let (client, mut refusals) = connect_watching(user).await;
    let store = store_on(env, client).await;
    let outcome = store.append(request(&address, event)).await;
    assert!(
        matches!(outcome, Err(StoreError::Unavailable(_))),
        "{user}'s append to {} is refused: {outcome:?}",
        address.subject(store.root())
    );
    refused(&mut refusals, &address.subject(store.root())).await;
    assert!(
        operator
            .read_aggregate(&address, 0)
            .await
            .unwrap()
            .is_empty(),
        "nothing reached the log"
    );
}

#[tokio::test]
async fn attack_anonymous_client_is_refused() {
    let anonymous = async_nats::connect(tenantry_testkit::nats_url()).await;
    assert!(
        anonymous.is_err(),
        "a client without credentials is refused"
    );
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("tenant".into(), "not-the-password".into())
        .connect(tenantry_testkit::nats_url())
        .await;
    assert!(wrong.is_err(), "a wrong password is refused");
}

#[tokio::test]
async fn attack_tenant_service_forging_an_api_key_is_refused() {
    let env = TestEnv::new().await;
    let tenant = Uuid::now_v7().to_string();
    let address =
        AggregateAddress::for_events::<ServiceAccountEvent>(tenant.clone(), tenant).unwrap();
    let forged = ServiceAccountEvent::ApiKeyCreated(pb::ApiKeyCreated {
        key_id: Uuid::now_v7().to_string(),
        ..Default::default()
    });
    assert_append_refused(&env, "tenant", address, forged).await;
}

#[tokio::test]
async fn attack_tenant_service_granting_platform_admin_is_refused() {
    let env = TestEnv::new().await;
    let user = Uuid::now_v7().to_string();
    let address = AggregateAddress::for_events::<UserEvent>(PLATFORM_TENANT, user).unwrap();
    let forged = UserEvent::PlatformAdminGranted(pb::PlatformAdminGranted::default());
    assert_append_refused(&env, "tenant", address, forged).await;
}

#[tokio::test]
async fn attack_gateway_publishing_a_tenant_event_is_refused() {
    let env = TestEnv::new().await;
    let tenant = Uuid::now_v7().to_string();
    let address = AggregateAddress::for_events::<TenantEvent>(tenant.clone(), tenant).unwrap();
    let forged = TenantEvent::Reactivated(pb::TenantReactivated::default());
    assert_append_refused(&env, "gateway", address, forged).await;
}

#[tokio::test]
async fn each_service_user_appends_its_own_aggregates() {
    let env = TestEnv::new().await;
    let tenant = Uuid::now_v7().to_string();
    let own: Vec<(&str, AppendRequest)> = vec![
        (
            "tenant",
            request(
                &AggregateAddress::for_events::<TenantEvent>(tenant.clone(), tenant.clone())
                    .unwrap(),
                TenantEvent::Reactivated(pb::TenantReactivated::default()),
            ),
        ),
        (
            "auth",
            request(
                &AggregateAddress::for_events::<ServiceAccountEvent>(
                    tenant.clone(),
                    tenant.clone(),
                )
                .unwrap(),
                ServiceAccountEvent::AccountCreated(pb::ServiceAccountCreated::default()),
            ),
        ),
        (
            "gateway",
            request(
                &AggregateAddress::for_events::<RouteEvent>(tenant.clone(), Uuid::now_v7())
                    .unwrap(),
                RouteEvent::Removed(pb::RouteRemoved::default()),
            ),
        ),
    ];
    for (user, append) in own {
        let client = env.connect_as(user).await.unwrap();
        let store = store_on(&env, client).await;
        let subject = append.address.subject(store.root());
        let outcome = store.append(append).await;
        assert!(outcome.is_ok(), "{user} appends to {subject}: {outcome:?}");
    }
    // The gateway's usage reports.
    let gateway = store_on(&env, env.connect_as("gateway").await.unwrap()).await;
    let subject = tenantry_contracts::usage::subject(
        &gateway.names().usage_root,
        &tenant,
        tenantry_contracts::usage::HTTP,
    )
    .unwrap();
    let ack = gateway
        .jetstream()
        .publish(subject.clone(), Vec::new().into())
        .await
        .unwrap()
        .await;
    assert!(
        ack.is_ok(),
        "the gateway reports usage on {subject}: {ack:?}"
    );
}

#[tokio::test]
async fn attack_tenant_service_reading_credentials_is_refused() {
    let env = TestEnv::new().await;
    let (client, mut refusals) = connect_watching("tenant").await;
    let store = store_on(&env, client.clone()).await;
    let root = store.root().to_owned();
    let stream = store.names().events_stream.clone();

    // A consumer over another service's aggregates.
    let credentials = type_filter(&root, "credential").unwrap();
    let tail = store.tail(credentials.clone()).await;
    assert!(tail.is_err(), "a consumer of {credentials} is refused");

    // An unnamed consumer, whose creation subject does not name its filter.
    let everything = serde_json::json!({
        "stream_name": stream,
        "config": { "filter_subject": format!("{root}.>"), "ack_policy": "none" },
    });
    let create = format!("$JS.API.CONSUMER.CREATE.{stream}");
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(create.clone(), everything.to_string().into()),
    )
    .await;
    assert!(
        !matches!(answer, Ok(Ok(_))),
        "an unnamed consumer is not created"
    );
    refused(&mut refusals, &create).await;

    // A subject naming a filter it may read over a body asking for everything: NATS
    // itself refuses the mismatch (the permissions rely on it).
    let own = type_filter(&root, "tenant").unwrap();
    let lying = serde_json::json!({
        "stream_name": stream,
        "config": { "name": "spy", "filter_subject": format!("{root}.>"), "ack_policy": "none" },
    });
    let answer = client
        .request(
            format!("$JS.API.CONSUMER.CREATE.{stream}.spy.{own}"),
            lying.to_string().into(),
        )
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(
        answer["error"]["err_code"], 10131,
        "a filter differing from the subject's is refused: {answer}"
    );

    // Listening to the log's subjects as they are published.
    let live = format!("{root}.>");
    let _subscription = client.subscribe(live.clone()).await.unwrap();
    refused(&mut refusals, &live).await;
}

#[tokio::test]
async fn attack_service_shrinking_or_deleting_the_log_is_refused() {
    let env = TestEnv::new().await;
    let operator = env.event_store().await;
    let tenant = Uuid::now_v7().to_string();
    let address = AggregateAddress::for_events::<TenantEvent>(tenant.clone(), tenant).unwrap();
    operator
        .append(request(
            &address,
            TenantEvent::Reactivated(pb::TenantReactivated::default()),
        ))
        .await
        .unwrap();

    let (client, mut refusals) = connect_watching("auth").await;
    let js = async_nats::jetstream::new(client);
    let stream = operator.names().events_stream.clone();
    let mut config = js
        .get_stream(&stream)
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    // A limit an update may set although the stream denies deletes: it drops old messages.
    config.max_messages = 1;
    let update = js.update_stream(config).await;
    assert!(update.is_err(), "the update is refused: {update:?}");
    refused(&mut refusals, &format!("$JS.API.STREAM.UPDATE.{stream}")).await;
    assert!(
        js.delete_stream(&stream).await.is_err(),
        "the delete is refused"
    );
    refused(&mut refusals, &format!("$JS.API.STREAM.DELETE.{stream}")).await;

    let info = async_nats::jetstream::new(env.nats.clone())
        .get_stream(&stream)
        .await
        .unwrap()
        .cached_info()
        .clone();
    assert_eq!(
        info.config.max_messages, -1,
        "the log's limits are unchanged"
    );
    assert_eq!(info.state.messages, 1, "the log still holds its event");
}

/// Projections acknowledge their durable consumers' messages as their own users (the ack
/// subjects each user may publish name its consumers): a missing permission would leave
/// every message unacknowledged, redelivered and finally stalling the projection.
#[tokio::test]
async fn projections_acknowledge_as_their_own_users() {
    let env = TestEnv::new().await;
    // Boxed: two services' start-up futures inline overflow a test thread's stack (debug).
    let (_tenant, channel) = Box::pin(common::start_tenant(&env, &env.common())).await;
    let (_auth, _) = Box::pin(common::start_auth(&env)).await;
    let operator = env.event_store().await;
    let slug = format!("t{}", &Uuid::new_v4().simple().to_string()[..10]);
    let mut create = tonic::Request::new(tenant_api::CreateTenantRequest {
        name: slug.clone(),
        slug,
        r#type: pb::TenantType::Business as i32,
        settings: None,
    });
    create.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", env.admin_token()).parse().unwrap(),
    );
    let created = TenantServiceClient::new(channel)
        .create_tenant(create)
        .await
        .unwrap()
        .into_inner();
    let tenant = created.tenant.unwrap().tenant_id;
    let member = operator
        .append(request(
            &AggregateAddress::for_events::<tenantry_contracts::auth::TeamEvent>(
                tenant.clone(),
                tenant.clone(),
            )
            .unwrap(),
            tenantry_contracts::auth::TeamEvent::MemberAdded(pb::MemberAdded {
                user_id: Uuid::now_v7().to_string(),
                role: "owner".into(),
                ..Default::default()
            }),
        ))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(env.nats.clone());
    let stream = operator.names().events_stream.clone();
    for (consumer, position) in [
        (tenantry_tenant::projection::NAME, created.position),
        (tenantry_auth::projection::NAME, member.position),
    ] {
        eventually(
            &format!("{consumer} acknowledges position {position}"),
            Duration::from_secs(20),
            || {
                let js = js.clone();
                let stream = stream.clone();
                async move {
                    let mut consumer = js
                        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                            consumer, &stream,
                        )
                        .await
                        .ok()?;
                    let info = consumer.info().await.ok()?;
                    (info.ack_floor.stream_sequence >= position).then_some(())
                }
            },
        )
        .await;
    }
}

mod common;
