//! The auth service: identities, memberships and roles, access and refresh tokens, API keys,
//! and per-tenant OIDC federation.
//!
//! # Layout
//! - [`domain`]: the aggregates (pure `decide`/`evolve`): user, credential, session, team,
//!   service accounts, identity providers.
//! - [`api`]: the gRPC services and their access policy.
//! - [`tokens`]: signing keys (rotation, JWKS) and access-token issuance.
//! - [`oidc`]: federated login with a tenant's identity provider.
//! - [`crypto`]: random secrets, argon2id passwords, sealing under the master key.
//! - [`throttle`]: failed logins per client address.
//! - [`projection`]: the `memberships` read model (user → tenants).
//! - [`bootstrap`]: the first platform admin.
//! - [`config`] and [`start`]: wiring it to NATS, Postgres and a listener.

#![forbid(unsafe_code)]

pub mod api;
pub mod bootstrap;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod oidc;
pub mod projection;
pub mod throttle;
pub mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use tenantry_eventstore::{Positions, ProjectionRunner, Repository, RunnerConfig};
use tenantry_kit::Clock;
use tenantry_kit::auth::JwksSource;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::foundation::{Foundation, Schema};
use tenantry_kit::server::{self, Readiness};
use tenantry_proto::auth::v1::{
    identity_provider_service_server::IdentityProviderServiceServer,
    key_service_server::KeyServiceServer, member_service_server::MemberServiceServer,
    service_account_service_server::ServiceAccountServiceServer,
    session_service_server::SessionServiceServer,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use api::AuthApi;
pub use config::AuthConfig;
use crypto::seal::Sealer;
use tokens::{Issuer, KeyStore};

/// Migrations of the `auth` schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Where the master key lives when none is configured (development).
pub const DEV_MASTER_KEY: &str = ".tenantry/dev/master.key";

pub use tenantry_kit::foundation::StartError;

impl From<crypto::seal::SealError> for StartError {
    fn from(e: crypto::seal::SealError) -> Self {
        Self::Other(e.to_string())
    }
}

/// What a test or `tenantry dev` may replace.
pub struct Overrides {
    pub clock: Arc<dyn Clock>,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            clock: Arc::new(tenantry_kit::SystemClock),
        }
    }
}

/// A started auth service.
pub struct Running {
    pub addr: SocketAddr,
    pub positions: Positions,
    pub api: AuthApi,
    /// The signing keys (tests sign deliberately broken tokens with them).
    pub keys: Arc<KeyStore>,
    pub task: JoinHandle<()>,
}

/// Connects, migrates, and serves on `listener` until `shutdown` resolves.
pub async fn start(
    common: &CommonConfig,
    config: &AuthConfig,
    listener: TcpListener,
    overrides: Overrides,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    if config.access_token_ttl_secs == 0 || config.access_token_ttl_secs > 900 {
        return Err(StartError::Other(
            "auth-access-token-ttl-secs: must be between 1 and 900".into(),
        ));
    }
    let foundation = Foundation::connect(
        common,
        Schema {
            name: &config.db_schema,
            role: &config.db_role,
            max_connections: config.db_max_connections,
            migrator: &MIGRATOR,
        },
    )
    .await?;

    let sealer = Arc::new(match &config.master_key_file {
        Some(path) => Sealer::from_file(path, false)?,
        None => Sealer::from_file(&PathBuf::from(DEV_MASTER_KEY), true)?,
    });
    let access_ttl = Duration::from_secs(config.access_token_ttl_secs);
    let keys = Arc::new(
        KeyStore::open(
            foundation.pool.clone(),
            sealer.clone(),
            overrides.clock.clone(),
            Duration::from_secs(config.key_publish_lead_secs),
            access_ttl,
        )
        .await?,
    );
    // The auth service verifies its own tokens against its key ring, in process.
    let ring_keys = keys.clone();
    let verifier = foundation
        .verifier(
            common,
            JwksSource::Local(Arc::new(move || ring_keys.ring().jwks.clone())),
            Duration::from_secs(1),
        )
        .await?;
    let Foundation { nats, store, pool } = foundation;

    let runner = ProjectionRunner::new(
        store.clone(),
        pool.clone(),
        projection::MembershipsProjection,
        RunnerConfig::default(),
    );
    crypto::password::warm_up();
    let api = AuthApi {
        users: Repository::new(store.clone(), 100_000),
        credentials: Repository::new(store.clone(), 100_000),
        sessions: Repository::new(store.clone(), 100_000),
        teams: Repository::new(store.clone(), 10_000),
        accounts: Repository::new(store.clone(), 10_000),
        providers: Repository::new(store.clone(), 10_000),
        pool: pool.clone(),
        issuer: Arc::new(Issuer {
            keys: keys.clone(),
            issuer: common.jwt_issuer.clone(),
            audience: common.jwt_audience.clone(),
            access_ttl,
            clock: overrides.clock.clone(),
        }),
        keys: keys.clone(),
        sealer,
        oidc: Arc::new(oidc::client::OidcClient::new()?),
        throttle: Arc::new(throttle::AddressThrottle::new(
            config.login_failures_per_addr,
        )),
        clock: overrides.clock,
        session_ttl: Duration::from_secs(u64::from(config.session_ttl_days) * 86_400),
        local_issuer: common.jwt_issuer.clone(),
    };
    if let Some(email) = &config.bootstrap_admin_email {
        let path = config
            .bootstrap_admin_password_file
            .as_ref()
            .ok_or_else(|| {
                StartError::Other(
                    "auth-bootstrap-admin-password-file: required with the e-mail".into(),
                )
            })?;
        let password = std::fs::read_to_string(path)
            .map_err(|e| StartError::Other(format!("{}: {e}", path.display())))?;
        bootstrap::ensure_admin(&api, email, password.trim_end_matches(['\n', '\r'])).await?;
    }

    let routes = tonic::service::Routes::new(SessionServiceServer::new(api.clone()))
        .add_service(MemberServiceServer::new(api.clone()))
        .add_service(ServiceAccountServiceServer::new(api.clone()))
        .add_service(IdentityProviderServiceServer::new(api.clone()))
        .add_service(KeyServiceServer::new(api.clone()));
    let jwks_keys = keys.clone();
    let http = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let keys = jwks_keys.clone();
            async move {
                (
                    [
                        (http::header::CONTENT_TYPE, "application/jwk-set+json"),
                        (http::header::CACHE_CONTROL, "public, max-age=30"),
                    ],
                    keys.ring().jwks.clone(),
                )
            }
        }),
    );
    let router = server::router(
        routes,
        &api::policy::SERVICES,
        api::policy::policy(),
        verifier,
        Readiness {
            nats,
            pool: Some(pool),
        },
        http,
    )
    .await;

    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let positions = runner.positions();
    let running_keys = keys.clone();
    let reload_every = Duration::from_secs(config.key_reload_secs.max(1));
    let limits = common.server.clone();
    let task = tokio::spawn(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let projection = tokio::spawn(runner.run(stopped(stop_rx.clone())));
        let reloader = tokio::spawn(keys.reload_every(reload_every, stopped(stop_rx.clone())));
        if let Err(e) = server::serve(listener, router, &limits, shutdown).await {
            tracing::error!(error = %e, "server failed");
        }
        let _ = stop_tx.send(true);
        let _ = tokio::join!(projection, reloader);
    });
    tracing::info!(%addr, "auth service listening");
    Ok(Running {
        addr,
        positions,
        api,
        keys: running_keys,
        task,
    })
}
