//! `leftovers`: lists what test worlds left on the shared servers (streams with the test
//! prefix, schemas in the test database), so `just test` can show that tests clean up. Exits
//! 1 if anything is left.
//!
//! `--since <unix seconds>` counts only streams created since then (a run's own), so worlds
//! of another run on the same machine are not blamed on this one.

use std::process::ExitCode;

use futures::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let since = match args.iter().position(|a| a == "--since") {
        Some(i) => match args.get(i + 1).and_then(|s| s.parse::<i64>().ok()) {
            Some(t) => t,
            None => {
                eprintln!("leftovers: --since takes unix seconds");
                return ExitCode::from(2);
            }
        },
        None => 0,
    };
    let streams = match test_streams(since).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("leftovers: nats: {e}");
            return ExitCode::from(2);
        }
    };
    let schemas = test_schemas().await;
    println!(
        "leftovers: {} test streams, {} test schemas",
        streams.len(),
        schemas.len()
    );
    for name in streams.iter().chain(&schemas) {
        println!("  {name}");
    }
    if streams.is_empty() && schemas.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn test_streams(since: i64) -> Result<Vec<String>, String> {
    let nats = tenantry_testkit::connect_operator().await?;
    let js = async_nats::jetstream::new(nats);
    let mut streams = js.streams();
    let mut found = Vec::new();
    while let Some(info) = streams.next().await {
        let info = info.map_err(|e| e.to_string())?;
        if info.config.name.starts_with("TK") && info.created.unix_timestamp() >= since {
            found.push(info.config.name);
        }
    }
    found.sort();
    Ok(found)
}

/// Every `tk…` schema of the test database (`just test` drops the database before a run).
async fn test_schemas() -> Vec<String> {
    let Ok(pool) = sqlx::PgPool::connect(tenantry_testkit::ADMIN_URL).await else {
        return Vec::new(); // no test database: nothing left
    };
    sqlx::query_as::<_, (String,)>(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tk%' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .map(|rows| rows.into_iter().map(|(n,)| n).collect())
    .unwrap_or_default()
}
