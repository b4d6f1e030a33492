//! Postgres: preparing a service's schema and role, its pool, and RLS-scoped transactions.
//!
//! Each service keeps its read model in its own schema and connects as its own role
//! (`tenantry_<service>`), which owns nothing, is neither superuser nor `BYPASSRLS`, and only
//! gets `SELECT/INSERT/UPDATE/DELETE` on the schema's tables. Every tenant table has RLS
//! enabled and forced with a policy on `tenantry.tenant_id`; every transaction sets it.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool, Postgres, Transaction};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("invalid database setting {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Where a service's read model lives.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// URL of an owner role (migrations only).
    pub admin_url: String,
    /// The service's schema, e.g. `tenant`; tests use a fresh one each.
    pub schema: String,
    /// The unprivileged role the service connects as, e.g. `tenantry_tenant`.
    pub service_role: String,
    pub service_password: Option<String>,
    pub max_connections: u32,
}

/// Identifiers are interpolated into DDL, so they are held to a strict shape.
fn identifier(field: &'static str, value: &str) -> Result<(), DbError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DbError::Invalid {
            field,
            reason: "must match [a-z_][a-z0-9_]{0,62}".into(),
        })
    }
}

impl DbSettings {
    fn admin_options(&self) -> Result<PgConnectOptions, DbError> {
        PgConnectOptions::from_str(&self.admin_url).map_err(|e| DbError::Invalid {
            field: "database_url",
            reason: e.to_string(),
        })
    }

    /// Creates the database (if missing), the schema and the service role, runs the
    /// migrations inside the schema, and grants the role what it needs and nothing more.
    pub async fn prepare(&self, migrator: &Migrator) -> Result<(), DbError> {
        identifier("schema", &self.schema)?;
        identifier("service_role", &self.service_role)?;
        let options = self.admin_options()?;
        let mut conn = connect_creating_database(&options).await?;
        // Roles are cluster-wide and CREATE ROLE races between services starting together.
        conn.execute("SELECT pg_advisory_lock(7000100)").await?;
        let (schema, role) = (&self.schema, &self.service_role);
        let ddl = format!(
            r#"CREATE SCHEMA IF NOT EXISTS "{schema}";
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
              END IF;
            END $$;"#
        );
        conn.execute(AssertSqlSafe(ddl)).await?;
        conn.execute("SELECT pg_advisory_unlock(7000100)").await?;

        let migrate_options = options.clone().options([("search_path", schema.as_str())]);
        let mut migrate_conn = PgConnection::connect_with(&migrate_options).await?;
        // `run_direct`: `run`'s `Acquire` bound makes the future unusable in a spawned task.
        migrator.run_direct(None, &mut migrate_conn, false).await?;
        // The event store's own tables (checkpoints, quarantine), after the service's
        // migrations (older ones created the checkpoint table themselves).
        tenantry_eventstore::projection::ensure_tables(&mut migrate_conn).await?;

        let database = options.get_database().unwrap_or("postgres").to_owned();
        let grants = format!(
            r#"GRANT CONNECT ON DATABASE "{database}" TO "{role}";
            GRANT USAGE ON SCHEMA "{schema}" TO "{role}";
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}";
            REVOKE ALL ON "{schema}"._sqlx_migrations FROM "{role}";"#
        );
        // GRANT CONNECT rewrites the database's catalog row: two services (or tests) granting
        // at once fail with "tuple concurrently updated". The role's lock serialises them.
        migrate_conn
            .execute("SELECT pg_advisory_lock(7000100)")
            .await?;
        let granted = migrate_conn.execute(AssertSqlSafe(grants)).await;
        migrate_conn
            .execute("SELECT pg_advisory_unlock(7000100)")
            .await?;
        granted?;
        Ok(())
    }

    /// The pool the service uses: its own role, its schema as search_path.
    pub async fn service_pool(&self) -> Result<PgPool, DbError> {
        let mut options = self
            .admin_options()?
            .username(&self.service_role)
            .options([("search_path", self.schema.as_str())])
            // Names the schema's connections in pg_stat_activity (tests end theirs by it).
            .application_name(&format!("tenantry_{}", self.schema));
        if let Some(password) = &self.service_password {
            options = options.password(password);
        }
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?)
    }
}

async fn connect_creating_database(options: &PgConnectOptions) -> Result<PgConnection, DbError> {
    match PgConnection::connect_with(options).await {
        Ok(conn) => Ok(conn),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            let database = options.get_database().unwrap_or("postgres").to_owned();
            identifier("database", &database)?;
            let mut server =
                PgConnection::connect_with(&options.clone().database("postgres")).await?;
            match server
                .execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{database}""#)))
                .await
            {
                Ok(_) => {}
                // Created by a concurrent start.
                Err(sqlx::Error::Database(e))
                    if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(PgConnection::connect_with(options).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Which rows a transaction may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One tenant's rows: every request on behalf of a caller.
    Tenant(Uuid),
    /// Every tenant's rows: projections, platform-admin listings and platform jobs only.
    Platform,
}

/// Opens a transaction with the RLS scope set for its whole duration.
///
/// `BEGIN` and the scope go in one round trip (one simple query of two statements): every
/// tenant-scoped transaction of every service starts here. The values spliced into it are a
/// UUID's hex digits and a constant, nothing a caller writes.
pub async fn scoped_tx(
    pool: &PgPool,
    scope: Scope,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let (tenant, platform) = scope_values(scope);
    pool.begin_with(AssertSqlSafe(format!(
        "BEGIN; SELECT set_config('tenantry.tenant_id', '{tenant}', true), \
         set_config('tenantry.platform_scope', '{platform}', true)"
    )))
    .await
}

/// The two settings the RLS policies read, for `scope`.
fn scope_values(scope: Scope) -> (String, &'static str) {
    match scope {
        Scope::Tenant(id) => (id.to_string(), "off"),
        Scope::Platform => (String::new(), "on"),
    }
}

/// Sets the RLS scope on a transaction that is already open (`set_config(..., true)` lasts
/// until the transaction ends).
pub async fn set_scope(conn: &mut PgConnection, scope: Scope) -> Result<(), sqlx::Error> {
    let (tenant, platform) = scope_values(scope);
    sqlx::query("SELECT set_config('tenantry.tenant_id', $1, true), set_config('tenantry.platform_scope', $2, true)")
        .bind(tenant)
        .bind(platform)
        .execute(conn)
        .await?;
    Ok(())
}
