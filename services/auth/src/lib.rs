//! The auth service: identities, memberships and roles, access and refresh tokens, API keys,
//! and per-tenant OIDC federation.
//!
//! # Layout
//! - [`domain`]: the aggregates (pure `decide`/`evolve`): user, credential, session, team,
//!   service accounts (of tenants, and the platform's that services call each other with),
//!   identity providers.
//! - [`api`]: the gRPC services and their access policy.
//! - [`tokens`]: signing keys (rotation, JWKS) and access-token issuance.
//! - [`oidc`]: federated login with a tenant's identity provider.
//! - [`crypto`]: random secrets, argon2id passwords, sealing under the master key.
//! - [`throttle`]: failed logins, sign-ups and federated logins per client address.
//! - [`projection`]: the `memberships` read model (user → tenants).
//! - [`bootstrap`]: the first platform admin.
//! - [`config`] and [`AuthService`]: its settings, and its parts for the kit's service
//!   template (`tenantry_kit::service`), which wires them to NATS, Postgres and a port.

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
use tenantry_eventstore::Positions;
use tenantry_kit::Clock;
use tenantry_kit::auth::JwksSource;
use tenantry_kit::plans::PlanDirectory;
use tenantry_kit::service::{Context, Database, Parts, Service, StartError};
use tenantry_proto::auth::v1::{
    identity_provider_service_server::IdentityProviderServiceServer,
    key_service_server::KeyServiceServer, member_service_server::MemberServiceServer,
    service_account_service_server::ServiceAccountServiceServer,
    session_service_server::SessionServiceServer,
};

use api::AuthApi;
pub use config::AuthConfig;
use crypto::seal::Sealer;
use tokens::{Issuer, KeyStore};

/// Migrations of the `auth` schema, applied at start.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Where `tenantry dev` keeps the master key it generates (see [`dev_master_key`]).
pub const DEV_MASTER_KEY: &str = ".tenantry/dev/master.key";

/// The development master key for `tenantry dev`: [`DEV_MASTER_KEY`], created (owner-only) if
/// missing. Only `tenantry dev` calls this; a service started on its own requires
/// `auth-master-key-file`, so no replica ever seals under a key it made up.
pub fn dev_master_key() -> Result<PathBuf, crypto::seal::SealError> {
    let path = PathBuf::from(DEV_MASTER_KEY);
    Sealer::from_file(&path, true)?;
    Ok(path)
}

impl From<crypto::seal::SealError> for StartError {
    fn from(e: crypto::seal::SealError) -> Self {
        Self::Other(e.to_string())
    }
}

/// The auth service: its settings, and what a test may replace.
pub struct AuthService {
    pub config: AuthConfig,
    pub clock: Arc<dyn Clock>,
}

/// What a started auth service hands back.
pub struct Handle {
    pub positions: Positions,
    pub api: AuthApi,
    /// The signing keys (tests sign deliberately broken tokens with them).
    pub keys: Arc<KeyStore>,
    /// Each tenant's plan limits (tests wait for a plan they appended to be applied).
    pub plans: Arc<PlanDirectory>,
}

impl Service for AuthService {
    type Config = AuthConfig;
    type Handle = Handle;
    const NAME: &'static str = "auth";

    fn new(config: AuthConfig) -> Self {
        Self {
            config,
            clock: Arc::new(tenantry_kit::SystemClock),
        }
    }

    fn listen(&self) -> SocketAddr {
        self.config.listen
    }

    fn database(&self) -> Option<Database> {
        Some(Database {
            schema: self.config.db_schema.clone(),
            role: self.config.db_role.clone(),
            max_connections: self.config.db_max_connections,
            migrator: &MIGRATOR,
        })
    }

    async fn build(self, ctx: Context) -> Result<Parts<Handle>, StartError> {
        let Self { config, clock } = self;
        if config.access_token_ttl_secs == 0 || config.access_token_ttl_secs > 900 {
            return Err(StartError::Other(
                "auth-access-token-ttl-secs: must be between 1 and 900".into(),
            ));
        }
        let pool = ctx.pool()?;
        let Some(master_key_file) = &config.master_key_file else {
            return Err(StartError::Other(
                "auth-master-key-file: required (TENANTRY_AUTH_MASTER_KEY_FILE): the file holding \
                 the master key; only `tenantry dev` generates one"
                    .into(),
            ));
        };
        let sealer = Arc::new(Sealer::from_file(master_key_file, false)?);
        let access_ttl = Duration::from_secs(config.access_token_ttl_secs);
        let keys = Arc::new(
            KeyStore::open(
                pool.clone(),
                sealer.clone(),
                clock.clone(),
                Duration::from_secs(config.key_publish_lead_secs),
                access_ttl,
            )
            .await?,
        );
        // The auth service verifies its own tokens against its key ring, in process, and reads
        // it as often as the ring reloads: a key withdrawn from the table stops working here
        // within seconds.
        let ring_keys = keys.clone();
        let max_age = ctx
            .common
            .jwks_max_age_secs
            .min(config.key_reload_secs.max(1));
        let verifier = ctx
            .verifier(
                JwksSource::Local(Arc::new(move || ring_keys.ring().jwks.clone())),
                Duration::from_secs(1),
                Duration::from_secs(max_age),
            )
            .await?;
        let runner = ctx.projection(projection::MembershipsProjection)?;
        // Billing's plan limits: the seats of each tenant's team.
        let plans = PlanDirectory::follow(&ctx.store).await?;
        crypto::password::warm_up();
        let api = AuthApi {
            users: ctx.repository(100_000),
            credentials: ctx.repository(100_000),
            sessions: ctx.repository(100_000),
            teams: ctx.repository(10_000),
            accounts: ctx.repository(10_000),
            providers: ctx.repository(10_000),
            pool,
            issuer: Arc::new(Issuer {
                keys: keys.clone(),
                issuer: ctx.common.jwt_issuer.clone(),
                audience: ctx.common.jwt_audience.clone(),
                access_ttl,
                clock: clock.clone(),
            }),
            keys: keys.clone(),
            sealer,
            oidc: Arc::new(oidc::client::OidcClient::for_service(
                &ctx.common,
                Some(ctx.addr),
            )?),
            throttle: Arc::new(throttle::Throttles {
                login_failures: throttle::AddressThrottle::new(config.login_failures_per_addr),
                signups: throttle::AddressThrottle::new(config.signups_per_addr),
                oidc_logins: throttle::AddressThrottle::new(config.oidc_logins_per_addr),
            }),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            clock,
            session_ttl: Duration::from_secs(u64::from(config.session_ttl_days) * 86_400),
            local_issuer: ctx.common.jwt_issuer.clone(),
            plans: plans.clone(),
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

        let jwks_keys = keys.clone();
        let jwks = axum::Router::new().route(
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
        let reload_keys = keys.clone();
        let reload_every = Duration::from_secs(config.key_reload_secs.max(1));
        let (sweep_pool, sweep_clock) = (api.pool.clone(), api.clock.clone());
        let sweep_every = Duration::from_secs(config.oidc_sweep_secs.max(1));
        let handle = Handle {
            positions: runner.positions(),
            api: api.clone(),
            keys,
            plans: plans.clone(),
        };
        Ok(Parts::new(handle, api::policy::policy())
            .grpc(SessionServiceServer::new(api.clone()))
            .grpc(MemberServiceServer::new(api.clone()))
            .grpc(ServiceAccountServiceServer::new(api.clone()))
            .grpc(IdentityProviderServiceServer::new(api.clone()))
            .grpc(KeyServiceServer::new(api))
            .http(jwks)
            .verifier(verifier)
            .follower(plans.follower().clone())
            .projection(runner)
            .job("key_reload", move |stop| {
                reload_keys.reload_every(reload_every, stop.wait())
            })
            .job("oidc_login_sweep", move |stop| {
                oidc::flow::sweep_every(sweep_pool, sweep_clock, sweep_every, stop.wait())
            }))
    }
}
