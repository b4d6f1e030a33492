//! The service template: one way to build a Tenantry service.
//!
//! A service says what it is made of by implementing [`Service`]: its name, its settings,
//! its database (schema, role, migrations), and — in [`Service::build`], given what [`run`]
//! connected ([`Context`]) — its [`Parts`]: gRPC services and their access policy, HTTP
//! routes, projections, followers, background jobs and readiness checks. [`run`] does the
//! rest, the same way for every service: NATS and the streams, the database (schema, role,
//! migrations, the event store's tables), the API-key directory, the tenants' standing
//! (suspended tenants are read-only) and JWT verification, the one port with gRPC, health,
//! reflection, `/healthz`, `/readyz` and `/metrics` (or an operator port for `/metrics`), the
//! connection limits, the jobs, and a graceful shutdown that stops them all. [`main`] is a whole binary's `main`;
//! `tenantry dev` and the test harness (`tenantry-testkit`) start services through [`run`]
//! too. The recipe for a new service is in `docs/adr/0010-service-template.md`.

mod context;
mod main;
mod parts;
mod run;

use std::net::SocketAddr;

pub use context::{Context, JWKS_REFRESH};
pub use main::main;
pub use parts::{Parts, ReadyCheck, Shutdown};
pub use run::{Running, StopHandle, event_store, run};

/// Why a service did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("nats: {0}")]
    Nats(String),
    #[error("event store: {0}")]
    Store(#[from] tenantry_eventstore::StoreError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Jwks(#[from] crate::auth::JwksError),
    #[error("{0}")]
    Other(String),
}

impl From<crate::seal::SealError> for StartError {
    fn from(e: crate::seal::SealError) -> Self {
        Self::Other(e.to_string())
    }
}

impl From<crate::ApiError> for StartError {
    fn from(e: crate::ApiError) -> Self {
        Self::Other(e.to_string())
    }
}

/// Where a service keeps its read model.
#[derive(Debug, Clone)]
pub struct Database {
    /// Schema name, e.g. `tenant` (prefixed by `TENANTRY_DB_SCHEMA_PREFIX` when set).
    pub schema: String,
    /// The unprivileged role the service connects as, e.g. `tenantry_tenant`.
    pub role: String,
    pub max_connections: u32,
    /// The service's migrations, run inside its schema at start.
    pub migrator: &'static sqlx::migrate::Migrator,
}

/// A Tenantry service: what it is made of. [`run`] does the rest.
pub trait Service: Sized + Send + 'static {
    /// Its own settings (flags and `TENANTRY_<NAME>_*` variables), beside the common ones.
    type Config: clap::Args + Clone + Send + Sync + 'static;
    /// What a started service hands its caller (tests, `tenantry dev`): positions to wait
    /// on, handlers to call directly, extra addresses.
    type Handle: Send + 'static;

    /// Short name: `tenant`, `auth`. Names logs, spans and the binary (`tenantry-<name>`).
    const NAME: &'static str;

    /// The service with its settings and production defaults for everything else (tests
    /// replace parts such as the clock through the service's own constructors).
    fn new(config: Self::Config) -> Self;

    /// Address of its gRPC and HTTP port.
    fn listen(&self) -> SocketAddr;

    /// Its database, or `None` for a service that keeps no read model in Postgres.
    fn database(&self) -> Option<Database>;

    /// Builds its parts on what [`run`] connected.
    fn build(
        self,
        ctx: Context,
    ) -> impl Future<Output = Result<Parts<Self::Handle>, StartError>> + Send;
}
