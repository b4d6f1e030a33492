//! Test support for Tenantry.
//!
//! Tests run against the real NATS and Postgres (started by `scripts/infra-up.sh`), each in
//! its own world so they run in parallel. NATS is the project's own authenticated server
//! (ADR 0009): the harness connects as the `operator` user, and every service a test starts
//! connects as its own user, so a service that needs a permission it lacks fails its tests.
//! Each world has a fresh stream prefix (its own streams and subject roots), a fresh Postgres
//! schema prefix, and a fresh signing key whose JWKS is written to a temporary file. When the world is dropped (the test ends, even by a panic) the services
//! it started stop and its streams, schemas, Redis keys and files are deleted.
//!
//! # Layout
//! - [`TestEnv`]: one test's isolated world, and tokens for any tenant and role.
//! - [`TestEnv::start`]: any service (anything implementing the kit's `Service`) on port 0
//!   in that world.
//! - `cleanup`: what a world leaves behind, deleted.
//! - [`NatsServer`]: a NATS of a test's own, to stop and start.
//! - [`append`]: another service's event written to the log as that service would.
//! - [`eventually`]: waits for state that converges.
//! - [`channel`]: a gRPC channel to a service started by a test.
//! - [`fakes`]: third parties a test cannot reach (Stripe, Efí, an SMTP relay), in their wire
//!   formats.
//! - [`pki`]: certificate authorities and certificates for tests that speak TLS.

#![forbid(unsafe_code)]

mod append;
mod cleanup;
pub mod fakes;
mod nats_server;
pub mod pki;

use std::path::PathBuf;
use std::time::Duration;

pub use append::append;
pub use nats_server::NatsServer;
use tenantry_eventstore::{EventStore, StreamNames};
use tenantry_kit::Role;
use tenantry_kit::auth::{AccessClaims, SigningKey, jwks};
use tenantry_kit::config::{CommonConfig, LogFormat};
use tenantry_kit::db::DbSettings;
use tenantry_kit::service::{Running, Service, StopHandle};
use uuid::Uuid;

/// The project's own NATS, with a user per service (`scripts/infra-up.sh`); never the
/// anonymous one a machine may run on 4222. `TENANTRY_TEST_NATS_URL` overrides it.
pub const NATS_URL: &str = "nats://127.0.0.1:4223";
/// Tests use their own database so they never touch a development installation's data.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/tenantry_test?sslmode=disable";
pub const ISSUER: &str = "tenantry-test";
pub const AUDIENCE: &str = "tenantry";

/// One test's isolated world on the shared servers.
pub struct TestEnv {
    /// Lower-case, used for the stream prefix and the schema name.
    pub id: String,
    pub nats: async_nats::Client,
    pub key: SigningKey,
    pub jwks_path: PathBuf,
    /// The services started in this world, stopped before it is deleted.
    services: tokio::sync::Mutex<Vec<StopHandle>>,
}

impl TestEnv {
    pub async fn new() -> Self {
        let id = format!("tk{}", &Uuid::new_v4().simple().to_string()[..12]);
        let nats = connect_operator()
            .await
            .unwrap_or_else(|e| panic!("NATS must run (scripts/infra-up.sh): {e}"));
        sweep_old_streams(&nats).await;
        ensure_database().await;
        let key = SigningKey::generate(format!("{id}-k1"));
        let jwks_path = std::env::temp_dir().join(format!("{id}-jwks.json"));
        std::fs::write(&jwks_path, jwks(&[&key]).to_string()).expect("write JWKS");
        Self {
            id,
            nats,
            key,
            jwks_path,
            services: tokio::sync::Mutex::default(),
        }
    }

    /// Starts `service` on a loopback port chosen by the system, in this world; it stops
    /// when the world is dropped.
    pub async fn start<S: Service>(&self, service: S) -> Running<S::Handle> {
        self.start_with(&self.common(), service).await
    }

    /// Like [`TestEnv::start`] with other common settings (a test that changes them).
    pub async fn start_with<S: Service>(
        &self,
        common: &CommonConfig,
        service: S,
    ) -> Running<S::Handle> {
        self.try_start_with(common, service)
            .await
            .unwrap_or_else(|e| panic!("the {} service starts: {e}", S::NAME))
    }

    /// Starts `service` like [`TestEnv::start_with`], returning why it did not start.
    pub async fn try_start_with<S: Service>(
        &self,
        common: &CommonConfig,
        service: S,
    ) -> Result<Running<S::Handle>, tenantry_kit::service::StartError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let running =
            tenantry_kit::service::run(common, service, listener, std::future::pending()).await?;
        self.services.lock().await.push(running.stop_handle());
        Ok(running)
    }

    /// Settings as a service under test reads them.
    pub fn common(&self) -> CommonConfig {
        CommonConfig {
            nats_url: nats_url(),
            // Each service connects as its own user (its permissions are tested with it).
            nats_credentials_dir: Some(nats_credentials_dir()),
            database_url: ADMIN_URL.into(),
            database_service_password_file: None,
            stream_prefix: Some(self.id.clone()),
            db_schema_prefix: Some(self.id.clone()),
            stream_replicas: 1,
            jwks: self.jwks_path.display().to_string(),
            jwks_max_age_secs: 300,
            jwt_issuer: ISSUER.into(),
            jwt_audience: AUDIENCE.into(),
            log_format: LogFormat::Text,
            // The default outbound policy (loopback refused): a test that calls servers it
            // starts on loopback allows that explicitly.
            egress_allow: Default::default(),
            egress_deny: Default::default(),
            server: Default::default(),
        }
    }

    /// A NATS connection as `user` (a service's user, e.g. `tenant`), made the way that
    /// service connects; for tests of what each user may do on the bus.
    pub async fn connect_as(
        &self,
        user: &str,
    ) -> Result<async_nats::Client, tenantry_kit::nats::NatsError> {
        tenantry_kit::nats::connect(&self.common(), user).await
    }

    /// The test's own schema for `service`.
    pub fn schema(&self, service: &str) -> String {
        format!("{}_{service}", self.id)
    }

    pub fn db(&self, service: &str) -> DbSettings {
        DbSettings {
            admin_url: ADMIN_URL.into(),
            schema: self.schema(service),
            service_role: format!("tenantry_{service}"),
            service_password: None,
            max_connections: 8,
        }
    }

    pub async fn event_store(&self) -> EventStore {
        let names = StreamNames::new(Some(&self.id)).expect("valid prefix");
        EventStore::open(self.nats.clone(), names, 1)
            .await
            .expect("open event store")
    }

    /// An admin pool on the test database (for catalog checks and fixtures).
    pub async fn admin_pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(ADMIN_URL)
            .await
            .expect("connect to the test database")
    }

    /// Claims of a valid token for `tenant` with `role`, expiring in 10 minutes.
    pub fn claims(&self, tenant: Option<Uuid>, role: Role) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            iss: ISSUER.into(),
            sub: format!("user-{}", Uuid::new_v4().simple()),
            aud: AUDIENCE.into(),
            tenant_id: tenant.map(|t| t.to_string()),
            role: role.as_str().into(),
            jti: Uuid::now_v7().to_string(),
            iat: now,
            nbf: now,
            exp: now + 600,
        }
    }

    /// A signed access token for `tenant` with `role`.
    pub fn token(&self, tenant: Option<Uuid>, role: Role) -> String {
        self.key
            .sign(&self.claims(tenant, role))
            .expect("sign token")
    }

    pub fn admin_token(&self) -> String {
        self.token(None, Role::PlatformAdmin)
    }

    /// Stops this world's services and deletes what it made (the same happens when it is
    /// dropped; benchmarks that make large worlds call it early).
    pub async fn cleanup(&self) {
        self.stop_services();
        cleanup::delete_world(&self.nats, &self.id).await;
    }

    fn stop_services(&self) {
        // Held only to push a handle: never contended when a test ends.
        if let Ok(mut services) = self.services.try_lock() {
            for service in services.drain(..) {
                service.stop();
            }
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::env::var_os("TENANTRY_TEST_KEEP").is_some() {
            eprintln!(
                "TENANTRY_TEST_KEEP: leaving streams and schemas of {}",
                self.id
            );
            return;
        }
        self.stop_services();
        let _ = std::fs::remove_file(&self.jwks_path);
        cleanup::delete_world_blocking(&self.id);
    }
}

/// The NATS tests use: [`NATS_URL`] unless `TENANTRY_TEST_NATS_URL` is set.
pub fn nats_url() -> String {
    std::env::var("TENANTRY_TEST_NATS_URL").unwrap_or_else(|_| NATS_URL.to_owned())
}

/// The passwords of the NATS users (`<user>.password`): `TENANTRY_TEST_NATS_CREDENTIALS_DIR`,
/// or the development ones `scripts/infra-up.sh` generates.
pub fn nats_credentials_dir() -> PathBuf {
    std::env::var_os("TENANTRY_TEST_NATS_CREDENTIALS_DIR")
        .map(PathBuf::from)
        .or_else(tenantry_kit::nats::dev_credentials_dir)
        .expect("HOME or TENANTRY_TEST_NATS_CREDENTIALS_DIR is set")
}

/// A connection as the `operator` user, who may do anything: the harness creates and deletes
/// test streams and reads or writes any subject with it.
pub async fn connect_operator() -> Result<async_nats::Client, String> {
    let dir = nats_credentials_dir();
    let password =
        tenantry_kit::nats::read_password(&dir, "operator").map_err(|e| e.to_string())?;
    let url = nats_url();
    async_nats::ConnectOptions::new()
        .name("tenantry-test-operator")
        .user_and_password("operator".into(), password)
        .connect(&url)
        .await
        .map_err(|e| format!("connect to {url} as operator: {e}"))
}

/// Test streams of runs older than an hour are deleted, once per process, so the server's
/// disk does not fill up with them.
async fn sweep_old_streams(nats: &async_nats::Client) {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            use futures::StreamExt as _;
            let js = async_nats::jetstream::new(nats.clone());
            let mut streams = js.streams();
            let cutoff = chrono::Utc::now() - chrono::Duration::hours(1);
            let mut old = Vec::new();
            while let Some(Ok(info)) = streams.next().await {
                let created = chrono::DateTime::from_timestamp(info.created.unix_timestamp(), 0)
                    .unwrap_or_default();
                if info.config.name.starts_with("TK") && created < cutoff {
                    old.push(info.config.name.clone());
                }
            }
            for name in old {
                let _ = js.delete_stream(&name).await;
            }
        })
        .await;
}

/// Creates the test database once per process if it is missing.
async fn ensure_database() {
    static CREATED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CREATED
        .get_or_init(|| async {
            use sqlx::Connection as _;
            if sqlx::PgConnection::connect(ADMIN_URL).await.is_ok() {
                return;
            }
            let mut server = sqlx::PgConnection::connect(
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
            )
            .await
            .expect("Postgres must run on 127.0.0.1:5432 (scripts/infra-up.sh)");
            // A concurrent test binary may win the race; the error is then harmless.
            let _ = sqlx::Executor::execute(&mut server, "CREATE DATABASE tenantry_test").await;
        })
        .await;
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached within {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connected gRPC channel to a service listening on `addr`.
pub async fn channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("the service accepts connections")
}
