//! What every service connects to at start: NATS and the event store, its own Postgres schema
//! (created and migrated) with a pool as its unprivileged role, and the token verifier.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tenantry_eventstore::{EventStore, StoreError, StreamNames};

use crate::ApiError;
use crate::auth::{ApiKeyDirectory, JwksError, JwksSource, Verifier, VerifierConfig};
use crate::config::CommonConfig;
use crate::db::{DbError, DbSettings};

/// Why a service did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("nats: {0}")]
    Nats(String),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Jwks(#[from] JwksError),
    #[error("{0}")]
    Other(String),
}

impl From<ApiError> for StartError {
    fn from(e: ApiError) -> Self {
        Self::Other(e.to_string())
    }
}

/// NATS and the event log, for a service without a database (the gateway).
pub async fn event_store(
    common: &CommonConfig,
) -> Result<(async_nats::Client, EventStore), StartError> {
    let nats = async_nats::connect(&common.nats_url)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))?;
    let names = StreamNames::new(common.stream_prefix.as_deref())?;
    let store = EventStore::open(nats.clone(), names, common.stream_replicas).await?;
    Ok((nats, store))
}

/// A service's own database settings.
pub struct Schema<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub max_connections: u32,
    pub migrator: &'a Migrator,
}

pub struct Foundation {
    pub nats: async_nats::Client,
    pub store: EventStore,
    pub pool: PgPool,
}

impl Foundation {
    pub async fn connect(common: &CommonConfig, schema: Schema<'_>) -> Result<Self, StartError> {
        let (nats, store) = event_store(common).await?;
        let db = DbSettings {
            admin_url: common.database_url.clone(),
            schema: schema.name.to_owned(),
            service_role: schema.role.to_owned(),
            service_password: common
                .database_service_password()
                .map_err(|e| StartError::Other(format!("database password file: {e}")))?,
            max_connections: schema.max_connections,
        };
        db.prepare(schema.migrator).await?;
        let pool = db.service_pool().await?;
        Ok(Self { nats, store, pool })
    }

    /// See [`verifier`].
    pub async fn verifier(
        &self,
        common: &CommonConfig,
        jwks: JwksSource,
        refresh_interval: Duration,
    ) -> Result<Arc<Verifier>, StartError> {
        verifier(common, &self.store, jwks, refresh_interval).await
    }
}

/// Verifies access tokens against `jwks` (refreshed on an unknown key id at most once per
/// `refresh_interval`) and API keys against the directory kept from the event log.
pub async fn verifier(
    common: &CommonConfig,
    store: &EventStore,
    jwks: JwksSource,
    refresh_interval: Duration,
) -> Result<Arc<Verifier>, StartError> {
    let verifier = Verifier::new(VerifierConfig {
        issuer: common.jwt_issuer.clone(),
        audience: common.jwt_audience.clone(),
        jwks,
        refresh_interval,
        max_age: Duration::from_secs(common.jwks_max_age_secs),
    })
    .await?
    .with_api_keys(ApiKeyDirectory::follow(store).await?);
    Ok(Arc::new(verifier))
}
