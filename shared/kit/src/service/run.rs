//! Starting a service: everything every service does the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use tenantry_eventstore::{EventStore, StreamNames};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::context::{JWKS_REFRESH, verifier};
use super::parts::Shutdown;
use super::{Context, Service, StartError};
use crate::auth::{ApiKeyDirectory, JwksSource, TenantDirectory};
use crate::config::CommonConfig;
use crate::db::DbSettings;
use crate::server::{self, Readiness};

/// A started service.
pub struct Running<H> {
    /// Its gRPC and HTTP port.
    pub addr: SocketAddr,
    /// What the service handed back (see [`Service::Handle`]).
    pub handle: H,
    /// Ends when the server and every job have stopped.
    pub task: JoinHandle<()>,
    stop: Arc<watch::Sender<bool>>,
}

/// A running service reads as its handle: `running.positions`, `running.api`.
impl<H> std::ops::Deref for Running<H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.handle
    }
}

impl<H> Running<H> {
    /// Asks the service to stop: the server drains, jobs end, [`Running::task`] finishes.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// A handle that stops the service when [`StopHandle::stop`] is called (the test
    /// harness keeps one per service it started).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }
}

/// Stops a running service from elsewhere.
#[derive(Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// Connects what `service` needs, builds it, and serves it on `listener` until `shutdown`
/// resolves (or [`Running::stop`] is called).
pub async fn run<S: Service>(
    common: &CommonConfig,
    service: S,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running<S::Handle>, StartError> {
    let span = tracing::info_span!("service", name = S::NAME);
    start(common, service, listener, shutdown)
        .instrument(span)
        .await
}

async fn start<S: Service>(
    common: &CommonConfig,
    service: S,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running<S::Handle>, StartError> {
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(format!("listener: {e}")))?;
    let (nats, store) = event_store(common, S::NAME).await?;
    let pool = match service.database() {
        None => None,
        Some(db) => {
            let settings = DbSettings {
                admin_url: common.database_url.clone(),
                schema: common.schema(&db.schema),
                service_role: db.role,
                service_password: common
                    .database_service_password()
                    .map_err(|e| StartError::Other(format!("database password file: {e}")))?,
                max_connections: db.max_connections,
            };
            settings.prepare(db.migrator).await?;
            Some(settings.service_pool().await?)
        }
    };
    let api_keys = ApiKeyDirectory::follow(&store).await?;
    let tenants = TenantDirectory::follow(&store).await?;
    let ctx = Context {
        common: common.clone(),
        addr,
        nats: nats.clone(),
        store,
        pool: pool.clone(),
        api_keys: api_keys.clone(),
    };
    let parts = service.build(ctx).await?;
    let verifier = match parts.verifier {
        Some(v) => v,
        // Built only now: a service that brings its own never fetches the JWKS.
        None => {
            verifier(
                common,
                api_keys.clone(),
                JwksSource::parse(&common.jwks),
                JWKS_REFRESH,
                std::time::Duration::from_secs(common.jwks_max_age_secs),
            )
            .await?
        }
    };
    let mut followers = parts.followers;
    followers.push(api_keys.follower().clone());
    followers.push(tenants.follower().clone());
    let mut router = server::router(
        parts.grpc,
        &parts.grpc_names,
        parts.policy,
        verifier,
        tenants,
        Readiness {
            nats,
            pool,
            followers,
            checks: parts.checks,
        },
        parts.http,
    )
    .await;
    // `/metrics` on the service's port, unless the service has an operator port for them.
    let operator = parts.operator;
    if operator.is_none() {
        router = router.merge(server::metrics_router());
    }

    let (stop, stopping) = watch::channel(false);
    let stop = Arc::new(stop);
    let external = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => { let _ = external.send(true); }
            () = external.closed() => {}
        }
    });
    let jobs = parts.jobs;
    let serve_stop = Shutdown(stopping.clone());
    let stop_jobs = stop.clone();
    let limits = common.server.clone();
    let task = tokio::spawn(
        async move {
            let mut running = Vec::with_capacity(jobs.len());
            for (name, job) in jobs {
                let job = job(Shutdown(stopping.clone()));
                let span = tracing::info_span!("job", name);
                running.push(tokio::spawn(job.instrument(span)));
            }
            if let Some((listener, routes)) = operator {
                let (limits, stop) = (limits.clone(), Shutdown(stopping.clone()));
                running.push(tokio::spawn(async move {
                    if let Err(e) = server::serve(listener, routes, &limits, stop.wait()).await {
                        tracing::error!(error = %e, "operator port failed");
                    }
                }));
            }
            if let Err(e) = server::serve(listener, router, &limits, serve_stop.wait()).await {
                tracing::error!(error = %e, "server failed");
            }
            // However the server ended, the jobs end with it.
            let _ = stop_jobs.send(true);
            for job in running {
                let _ = job.await;
            }
            tracing::info!("stopped");
        }
        .in_current_span(),
    );
    tracing::info!(%addr, "listening");
    Ok(Running {
        addr,
        handle: parts.handle,
        task,
        stop,
    })
}

/// NATS, connected as `service`'s own user, and the streams (created if missing).
pub async fn event_store(
    common: &CommonConfig,
    service: &str,
) -> Result<(async_nats::Client, EventStore), StartError> {
    let nats = crate::nats::connect(common, service)
        .await
        .map_err(|e| StartError::Nats(e.to_string()))?;
    let names = StreamNames::new(common.stream_prefix.as_deref())?;
    let store = EventStore::open(nats.clone(), names, common.stream_replicas).await?;
    Ok((nats, store))
}
