//! The `projection_checkpoints` table, kept in the projection's own schema (the pool's
//! search_path), so a rebuild into a fresh schema starts from position 0.

use sqlx::{Executor, PgConnection};

/// Creates the store's tables in the connection's schema (its search_path) if they are
/// missing: the checkpoints, and the quarantine of events no projection could decode.
/// Services call it after their own migrations (older ones created the checkpoint table
/// themselves; this leaves it as it is).
pub async fn ensure_tables(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    conn.execute(
        "-- How far each projection has applied its stream (not tenant data: no RLS).
        CREATE TABLE IF NOT EXISTS projection_checkpoints (
            name       text PRIMARY KEY,
            position   bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        -- Messages a projection could not decode: skipped, but never silently.
        CREATE TABLE IF NOT EXISTS projection_quarantine (
            projection     text NOT NULL,
            position       bigint NOT NULL,
            subject        text NOT NULL,
            error          text NOT NULL,
            quarantined_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (projection, position)
        );",
    )
    .await?;
    Ok(())
}

/// Records a message `projection` cannot decode, inside the transaction that moves its
/// checkpoint past it.
pub(crate) async fn quarantine(
    conn: &mut PgConnection,
    projection: &str,
    position: u64,
    subject: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_quarantine (projection, position, subject, error)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(projection)
    .bind(position as i64)
    .bind(subject)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn read_checkpoint(conn: &mut PgConnection, name: &str) -> Result<u64, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(row.map_or(0, |(p,)| p as u64))
}

/// Reads the checkpoint and locks its row until the transaction ends (creating the row on
/// first use), in one round trip. The same statement makes the transaction's commit
/// asynchronous: a projection is replayed from the log and its checkpoint commits with its
/// rows, so losing the last commits in a database crash only means applying them again.
pub(crate) async fn lock_checkpoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<u64, sqlx::Error> {
    let (position, _): (i64, String) = sqlx::query_as(
        "WITH c AS (
           INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0)
           ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
           RETURNING position)
         SELECT c.position, set_config('synchronous_commit', 'off', true) FROM c",
    )
    .bind(name)
    .fetch_one(conn)
    .await?;
    Ok(position as u64)
}

pub(crate) async fn write_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    position: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(position as i64)
    .execute(conn)
    .await?;
    Ok(())
}
