//! Deleting what a test's world made on the shared servers: its streams, its schemas (after
//! ending the connections its services still hold), its Redis keys, its files.

use std::time::Duration;

use futures::StreamExt as _;

use crate::{ADMIN_URL, connect_operator};

/// Deletes the world `id` (see the module docs). Failures are reported, not fatal: the next
/// run's sweep removes what is left.
pub async fn delete_world(nats: &async_nats::Client, id: &str) {
    delete_streams(nats, id).await;
    drop_schemas(id).await;
    delete_redis_keys(id).await;
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(id));
}

/// [`delete_world`] from a synchronous context (a `Drop`), on a runtime of its own in a
/// thread of its own, since the test's runtime may be single-threaded and busy dropping.
pub fn delete_world_blocking(id: &str) {
    let id = id.to_owned();
    let worker = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            match connect_operator().await {
                Ok(nats) => delete_world(&nats, &id).await,
                Err(e) => eprintln!("cleanup of {id}: nats: {e}"),
            }
        });
    });
    let _ = worker.join();
}

async fn delete_streams(nats: &async_nats::Client, id: &str) {
    let js = async_nats::jetstream::new(nats.clone());
    let upper = format!("{}_", id.to_uppercase());
    let mut names = js.stream_names();
    let mut mine = Vec::new();
    while let Some(Ok(name)) = names.next().await {
        if name.starts_with(&upper) {
            mine.push(name);
        }
    }
    for name in mine {
        if let Err(e) = js.delete_stream(&name).await {
            eprintln!("cleanup of {id}: stream {name}: {e}");
        }
    }
}

async fn drop_schemas(id: &str) {
    let Ok(admin) = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(ADMIN_URL)
        .await
    else {
        return; // no test database: nothing was made
    };
    // Services of the world may still hold connections (inside a transaction, even): end
    // them, or DROP SCHEMA would wait on their locks.
    let _ = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name LIKE 'tenantry_' || $1 || '%' AND pid <> pg_backend_pid()",
    )
    .bind(id)
    .execute(&admin)
    .await;
    let schemas: Vec<(String,)> =
        sqlx::query_as("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 || '\\_%'")
            .bind(id)
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
    for (schema,) in schemas {
        let drop = format!("SET lock_timeout = '10s'; DROP SCHEMA \"{schema}\" CASCADE");
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&admin)
            .await
        {
            eprintln!("cleanup of {id}: schema {schema}: {e}");
        }
    }
    admin.close().await;
}

/// The gateway's rate-limit keys live under `tenantry:<subject root>:`.
async fn delete_redis_keys(id: &str) {
    let Ok(client) = redis::Client::open("redis://127.0.0.1:6379") else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return; // no Redis: no keys
    };
    let pattern = format!("tenantry:{id}.*");
    let keys: Vec<String> = match redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
    {
        Ok(keys) => keys,
        Err(_) => return,
    };
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
    }
}
