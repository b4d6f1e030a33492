//! The event store against a real NATS server and a real Postgres.

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Executor, PgConnection, PgPool};
use tenantry_eventstore::{
    AggregateAddress, AppendRequest, EventStore, Projection, ProjectionError, ProjectionRunner,
    RunnerConfig, StoreError, StoredMessage,
};
use tenantry_proto::events::v1::{Envelope, EventBatch};
use tenantry_testkit::TestEnv;

fn request(tenant: &str, id: &str, expected: Option<u64>, msg_id: &str) -> AppendRequest {
    AppendRequest {
        address: AggregateAddress::new(tenant, "thing", id).unwrap(),
        expected,
        message_id: msg_id.to_owned(),
        batch: EventBatch {
            events: vec![Envelope {
                tenant_id: tenant.into(),
                aggregate_id: id.into(),
                event_type: "thing.happened.v1".into(),
                ..Default::default()
            }],
        },
        traceparent: None,
        fingerprint: None,
    }
}

#[tokio::test]
async fn expected_sequence_and_message_id_guard_every_append() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let first = store
        .append(request("t1", "a", Some(0), "m1"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    // Expected 0 means "must not exist": a second creation is refused.
    let again = store.append(request("t1", "a", Some(0), "m2")).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    // A retry of the first command (same message id) is acknowledged as a duplicate, even
    // with a stale expectation, and writes nothing.
    let retry = store
        .append(request("t1", "a", Some(0), "m1"))
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.position, first.position);
    let next = store
        .append(request("t1", "a", Some(first.position), "m3"))
        .await
        .unwrap();
    let read = store
        .read_aggregate(&AggregateAddress::new("t1", "thing", "a").unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(
        read.iter().map(|m| m.position).collect::<Vec<_>>(),
        vec![first.position, next.position]
    );
    assert_eq!(
        store
            .read_aggregate(
                &AggregateAddress::new("t1", "thing", "a").unwrap(),
                first.position
            )
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn pipelined_appends_keep_per_request_results() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let mut requests: Vec<_> = (0..200)
        .map(|i| request("t1", &format!("agg{i}"), Some(0), &format!("p{i}")))
        .collect();
    // One conflicting request in the middle: it fails alone.
    requests.push(request("t1", "agg7", Some(0), "conflict"));
    let results = store.append_many(requests).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 200);
    assert!(matches!(results[200], Err(StoreError::Conflict { .. })));
    assert_eq!(store.last_position().await.unwrap(), 200);
}

/// Records how many times each position was applied.
#[derive(Default)]
struct Counting {
    /// When set, the batch holding position 500 hangs after writing its rows, inside its
    /// transaction, and raises `hanging`.
    hang: bool,
    hanging: Arc<AtomicBool>,
}

impl Projection for Counting {
    type Message = StoredMessage;

    fn name(&self) -> &str {
        "counting"
    }

    fn filter(&self, root: &str) -> String {
        format!("{root}.*.thing.*")
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        messages: &[StoredMessage],
    ) -> Result<(), ProjectionError> {
        for m in messages {
            sqlx::query("INSERT INTO applied (position, times) VALUES ($1, 1) ON CONFLICT (position) DO UPDATE SET times = applied.times + 1")
                .bind(m.position as i64)
                .execute(&mut *tx)
                .await?;
        }
        if self.hang && messages.iter().any(|m| m.position >= 500) {
            self.hanging.store(true, Ordering::SeqCst);
            pending::<()>().await;
        }
        Ok(())
    }
}

async fn projection_schema(env: &TestEnv, name: &str) -> PgPool {
    let schema = format!("{}_{name}", env.id);
    let admin = env.admin_pool().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.applied (position bigint PRIMARY KEY, times int NOT NULL);"
        )))
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(
            tenantry_testkit::ADMIN_URL
                .parse::<sqlx::postgres::PgConnectOptions>()
                .unwrap()
                .options([("search_path", schema.as_str())]),
        )
        .await
        .unwrap();
    // The store creates its own tables.
    let mut conn = pool.acquire().await.unwrap();
    tenantry_eventstore::projection::ensure_tables(&mut conn)
        .await
        .unwrap();
    drop(conn);
    pool
}

async fn fill(store: &EventStore, n: usize) -> u64 {
    let requests = (0..n)
        .map(|i| request("t1", &format!("x{i}"), Some(0), &format!("f{i}")))
        .collect();
    for r in store.append_many(requests).await {
        r.unwrap();
    }
    store.last_position().await.unwrap()
}

#[tokio::test]
async fn a_runner_killed_mid_batch_loses_nothing_and_applies_nothing_twice() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let last = fill(&store, 1000).await;
    let pool = projection_schema(&env, "crash").await;
    let config = RunnerConfig {
        batch_size: 100,
        ..Default::default()
    };

    let hanging = Arc::new(AtomicBool::new(false));
    let first = ProjectionRunner::new(
        store.clone(),
        pool.clone(),
        Counting {
            hang: true,
            hanging: hanging.clone(),
        },
        config.clone(),
    );
    let positions = first.positions();
    let task = tokio::spawn(first.run(pending()));
    // Batches commit up to the one holding position 500, which hangs inside its
    // transaction; then the process "dies".
    tenantry_testkit::eventually("a batch hangs mid-way", Duration::from_secs(10), || async {
        hanging.load(Ordering::SeqCst).then_some(())
    })
    .await;
    let reached = positions.current();
    assert!(reached > 0 && reached < 500, "{reached}");
    task.abort();
    let _ = task.await;

    let second = ProjectionRunner::new(store.clone(), pool.clone(), Counting::default(), config);
    let positions = second.positions();
    let task = tokio::spawn(second.run(pending()));
    positions
        .wait_for(last, Duration::from_secs(30))
        .await
        .expect("restarted runner catches up");
    task.abort();

    let (count, max_times): (i64, i32) = sqlx::query_as("SELECT count(*), max(times) FROM applied")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((count, max_times), (1000, 1));
}

#[tokio::test]
async fn catch_up_into_a_fresh_schema_matches_the_live_projection() {
    let env = TestEnv::new().await;
    let store = env.event_store().await;
    let last = fill(&store, 300).await;
    let live = projection_schema(&env, "live").await;
    let runner = ProjectionRunner::new(
        store.clone(),
        live.clone(),
        Counting::default(),
        RunnerConfig::default(),
    );
    let positions = runner.positions();
    let task = tokio::spawn(runner.run(pending()));
    positions
        .wait_for(last, Duration::from_secs(20))
        .await
        .unwrap();
    task.abort();

    let fresh = projection_schema(&env, "rebuild").await;
    let rebuild = RunnerConfig {
        consumer_name: Some("counting_rebuild".into()),
        batch_size: 64,
        ..Default::default()
    };
    let reached = ProjectionRunner::new(store, fresh.clone(), Counting::default(), rebuild)
        .catch_up()
        .await
        .unwrap();
    assert_eq!(reached, last);
    let dump = |pool: PgPool| async move {
        sqlx::query_as::<_, (i64, i32)>("SELECT position, times FROM applied ORDER BY position")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    assert_eq!(dump(live).await, dump(fresh).await);
}
