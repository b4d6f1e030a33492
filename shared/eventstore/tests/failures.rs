//! Events that cannot be decoded, and followers that lose their consumer: nothing stops for
//! good, nothing is skipped silently.

use std::future::pending;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use sqlx::{Executor, PgConnection, PgPool};
use tenantry_eventstore::{
    AggregateAddress, AppendRequest, EventPayload, EventStore, Follow, FollowError, FollowState,
    Projection, ProjectionError, ProjectionRunner, RunnerConfig, StoredMessage, event_table,
};
use tenantry_proto::events::v1::{self as pb, Envelope, EventBatch};
use tenantry_testkit::{TestEnv, eventually};

/// A contract of the tests' own.
#[derive(Debug, Clone, PartialEq)]
enum ThingEvent {
    Happened(pb::TenantSuspended),
}

event_table!(ThingEvent in "thing" {
    Happened => "thing.happened.v1": pb::TenantSuspended,
});

/// Appends one event of type `event_type` to thing `id` (a type the contract does not know
/// makes an event no reader can decode, as a newer writer or a bug would).
async fn append(store: &EventStore, id: &str, event_type: &str) -> u64 {
    let event = ThingEvent::Happened(pb::TenantSuspended {
        reason: id.to_owned(),
    });
    store
        .append(AppendRequest {
            address: AggregateAddress::for_events::<ThingEvent>("t1", id).unwrap(),
            expected: None,
            message_id: format!("{id}-{event_type}"),
            batch: EventBatch {
                events: vec![Envelope {
                    tenant_id: "t1".into(),
                    aggregate_type: "thing".into(),
                    aggregate_id: id.into(),
                    event_type: event_type.into(),
                    payload: event.encode_payload(),
                    ..Default::default()
                }],
            },
            traceparent: None,
            fingerprint: None,
        })
        .await
        .unwrap()
        .position
}

/// Writes one row per thing that happened.
struct Things;

impl Projection for Things {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        "things"
    }

    fn filter(&self, root: &str) -> String {
        format!("{root}.*.thing.*")
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        for message in messages {
            for stored in message.events::<ThingEvent>()? {
                let ThingEvent::Happened(e) = stored.event;
                sqlx::query("INSERT INTO things (position, id) VALUES ($1, $2)")
                    .bind(message.position as i64)
                    .bind(e.reason)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}

async fn schema(env: &TestEnv) -> PgPool {
    let schema = format!("{}_things", env.id);
    env.admin_pool()
        .await
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.things (position bigint PRIMARY KEY, id text NOT NULL);"
        )))
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            tenantry_testkit::ADMIN_URL
                .parse::<sqlx::postgres::PgConnectOptions>()
                .unwrap()
                .options([("search_path", schema.as_str())]),
        )
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    tenantry_eventstore::projection::ensure_tables(&mut conn)
        .await
        .unwrap();
    drop(conn);
    pool
}

#[tokio::test]
async fn an_undecodable_event_is_quarantined_and_the_projection_goes_on() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    append(&store, "a", "thing.happened.v1").await;
    let bad = append(&store, "b", "thing.exploded.v9").await;
    let last = append(&store, "c", "thing.happened.v1").await;
    let pool = schema(&env).await;

    let runner = ProjectionRunner::new(store, pool.clone(), Things, RunnerConfig::default());
    let positions = runner.positions();
    let task = tokio::spawn(runner.run(pending()));
    positions
        .wait_for(last, Duration::from_secs(20))
        .await
        .expect("the projection goes past the bad event");
    task.abort();

    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM things ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(ids, [("a".to_string(),), ("c".to_string(),)]);
    let quarantined: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT projection, position, error FROM projection_quarantine")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0].0, "things");
    assert_eq!(quarantined[0].1, bad as i64);
    assert!(
        quarantined[0].2.contains("thing.exploded.v9"),
        "{quarantined:?}"
    );
}

/// Collects the things a follower applied.
#[derive(Clone, Default)]
struct Seen(Arc<RwLock<Vec<u64>>>);

impl Follow for Seen {
    fn apply(&mut self, message: &StoredMessage) -> Result<(), FollowError> {
        message.events::<ThingEvent>()?;
        self.0.write().unwrap().push(message.position);
        Ok(())
    }
}

impl Seen {
    fn positions(&self) -> Vec<u64> {
        self.0.read().unwrap().clone()
    }
}

#[tokio::test]
async fn a_follower_quarantines_what_it_cannot_decode_and_goes_on() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let first = append(&store, "a", "thing.happened.v1").await;
    let bad = append(&store, "b", "thing.exploded.v9").await;
    let seen = Seen::default();
    let follower = store
        .follow(
            "things",
            format!("{}.*.thing.*", store.root()),
            seen.clone(),
        )
        .await
        .unwrap();
    let last = append(&store, "c", "thing.happened.v1").await;
    eventually("the follower applies c", Duration::from_secs(5), || async {
        (seen.positions().contains(&last)).then_some(())
    })
    .await;
    assert_eq!(seen.positions(), [first, last]);
    let status = follower.status();
    assert_eq!(status.quarantined, 1);
    assert_eq!(status.last_quarantined.unwrap().position, bad);
    assert_eq!(status.state, FollowState::Live);
}

#[tokio::test]
async fn a_follower_whose_consumer_is_deleted_reopens_after_its_last_position() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let first = append(&store, "a", "thing.happened.v1").await;
    let seen = Seen::default();
    let follower = store
        .follow(
            "things",
            format!("{}.*.thing.*", store.root()),
            seen.clone(),
        )
        .await
        .unwrap();
    let mut status = follower.watch();

    // The server forgets the follower's consumer (as after a restart).
    let js = store.jetstream();
    let events = js.get_stream(&store.names().events_stream).await.unwrap();
    let names: Vec<String> = events.consumer_names().map(Result::unwrap).collect().await;
    assert!(!names.is_empty());
    for name in names {
        events.delete_consumer(&name).await.unwrap();
    }
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| matches!(s.state, FollowState::Interrupted { .. })),
    )
    .await
    .expect("the follower notices within seconds")
    .unwrap();

    let last = append(&store, "b", "thing.happened.v1").await;
    eventually(
        "the follower applies b",
        Duration::from_secs(10),
        || async { (seen.positions().contains(&last)).then_some(()) },
    )
    .await;
    assert_eq!(seen.positions(), [first, last], "nothing applied twice");
    follower.caught_up().await;
}

#[tokio::test]
async fn a_tail_starts_after_the_position_it_is_given() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let a = append(&store, "a", "thing.happened.v1").await;
    let b = append(&store, "b", "thing.happened.v1").await;
    let mut tail = store
        .tail_after::<StoredMessage>(
            tenantry_eventstore::StreamKind::Events,
            format!("{}.>", store.root()),
            a,
        )
        .await
        .unwrap();
    assert_eq!(tail.pending_at_start, 1);
    match tail.next().await {
        Some(tenantry_eventstore::TailItem::Message { position, .. }) => assert_eq!(position, b),
        _ => panic!("the message after {a}"),
    }
}
