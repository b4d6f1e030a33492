//! What [`super::run`] connected before it asks a service for its parts.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tenantry_eventstore::{
    Aggregate, EventStore, Projection, ProjectionRunner, Repository, RunnerConfig,
};

use super::StartError;
use crate::auth::{ApiKeyDirectory, JwksSource, Verifier, VerifierConfig};
use crate::config::CommonConfig;

/// How often a verifier re-reads a JWKS it fetched (also on an unknown key id, at most this
/// often).
pub const JWKS_REFRESH: Duration = Duration::from_secs(30);

/// The connections and shared state a service is built on.
pub struct Context {
    pub common: CommonConfig,
    /// The service's own port (the outbound policy refuses it as a destination).
    pub addr: std::net::SocketAddr,
    pub nats: async_nats::Client,
    pub store: EventStore,
    pub(crate) pool: Option<PgPool>,
    pub(crate) api_keys: Arc<ApiKeyDirectory>,
}

impl Context {
    /// The service's pool (its own role, its schema as search_path).
    ///
    /// # Errors
    /// When the service declared no database.
    pub fn pool(&self) -> Result<PgPool, StartError> {
        self.pool
            .clone()
            .ok_or_else(|| StartError::Other("this service declared no database".into()))
    }

    /// A repository of `A` aggregates keeping up to `capacity` of them in memory.
    pub fn repository<A: Aggregate>(&self, capacity: usize) -> Repository<A> {
        Repository::new(self.store.clone(), capacity)
    }

    /// A runner for `projection` on the service's pool, with the default settings.
    pub fn projection<P: Projection>(
        &self,
        projection: P,
    ) -> Result<ProjectionRunner<P>, StartError> {
        Ok(ProjectionRunner::new(
            self.store.clone(),
            self.pool()?,
            projection,
            RunnerConfig::default(),
        ))
    }

    /// A verifier of access tokens against `jwks` (and of API keys against the directory
    /// every service follows). Services that don't call it get one on the configured JWKS.
    ///
    /// `refresh_interval` bounds how often an unknown key id re-reads the JWKS; `max_age` how
    /// old the copy may grow before it is read again (a withdrawn key stops working then).
    pub async fn verifier(
        &self,
        jwks: JwksSource,
        refresh_interval: Duration,
        max_age: Duration,
    ) -> Result<Arc<Verifier>, StartError> {
        verifier(
            &self.common,
            self.api_keys.clone(),
            jwks,
            refresh_interval,
            max_age,
        )
        .await
    }
}

pub(crate) async fn verifier(
    common: &CommonConfig,
    api_keys: Arc<ApiKeyDirectory>,
    jwks: JwksSource,
    refresh_interval: Duration,
    max_age: Duration,
) -> Result<Arc<Verifier>, StartError> {
    let verifier = Verifier::new(VerifierConfig {
        issuer: common.jwt_issuer.clone(),
        audience: common.jwt_audience.clone(),
        jwks,
        refresh_interval,
        max_age,
    })
    .await?
    .with_api_keys(api_keys);
    Ok(Arc::new(verifier))
}
