//! What a service is made of, as [`super::Service::build`] hands it to [`super::run`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use futures::future::BoxFuture;
use tenantry_eventstore::{Follower, Projection, ProjectionRunner};
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::auth::{RpcPolicy, Verifier};

/// The signal to stop, handed to every job: resolves when the service shuts down.
#[derive(Clone)]
pub struct Shutdown(pub(crate) watch::Receiver<bool>);

impl Shutdown {
    /// Resolves once the service is stopping.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Whether the service is stopping already.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }
}

/// A background task of the service, started with its shutdown signal.
pub(crate) type Job = Box<dyn FnOnce(Shutdown) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A readiness condition beyond NATS, the database and the followers: `Err` says why the
/// service should not get traffic now.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The parts of a service, collected with a builder:
///
/// ```ignore
/// Parts::new(handle, api::policy::policy())
///     .grpc(TenantServiceServer::new(api))
///     .projection(runner)
///     .job("trial_sweep", move |stop| trials::sweep_every(api, every, stop.wait()))
/// ```
pub struct Parts<H> {
    pub(crate) handle: H,
    pub(crate) policy: RpcPolicy,
    pub(crate) grpc: Routes,
    /// The gRPC services' full names, for health and reflection.
    pub(crate) grpc_names: Vec<&'static str>,
    pub(crate) http: Router,
    pub(crate) jobs: Vec<(&'static str, Job)>,
    pub(crate) followers: Vec<Follower>,
    pub(crate) checks: Vec<(&'static str, ReadyCheck)>,
    pub(crate) verifier: Option<Arc<Verifier>>,
    /// `/metrics` (and whatever else the operator needs) on a port of its own instead of
    /// the service's port.
    pub(crate) operator: Option<(tokio::net::TcpListener, Router)>,
}

impl<H> Parts<H> {
    /// A service whose RPCs are allowed as `policy` declares (an RPC it does not declare is
    /// denied), handing `handle` to its caller.
    pub fn new(handle: H, policy: RpcPolicy) -> Self {
        Self {
            handle,
            policy,
            grpc: Routes::default(),
            grpc_names: Vec::new(),
            http: Router::new(),
            jobs: Vec::new(),
            followers: Vec::new(),
            checks: Vec::new(),
            verifier: None,
            operator: None,
        }
    }

    /// Serves a gRPC service (marked SERVING in gRPC health, listed by reflection).
    pub fn grpc<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.grpc = self.grpc.add_service(service);
        self.grpc_names.push(S::NAME);
        self
    }

    /// Serves HTTP routes beside gRPC on the same port (webhooks, WebSocket, JWKS). They do
    /// their own authentication.
    pub fn http(mut self, routes: Router) -> Self {
        self.http = self.http.merge(routes);
        self
    }

    /// Runs a projection for the life of the service.
    pub fn projection<P: Projection>(self, runner: ProjectionRunner<P>) -> Self {
        self.job("projection", move |stop| Box::pin(runner.run(stop.wait())))
    }

    /// Reports `follower` in `/readyz`: the service is not ready while the follower is not
    /// live (its in-memory state may be stale).
    pub fn follower(mut self, follower: Follower) -> Self {
        self.followers.push(follower);
        self
    }

    /// Runs `job` in the background until the shutdown signal it is given resolves; the
    /// service's shutdown waits for it.
    pub fn job<F, Fut>(mut self, name: &'static str, job: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.jobs.push((
            name,
            Box::new(move |stop| Box::pin(job(stop)) as Pin<Box<_>>),
        ));
        self
    }

    /// Adds a readiness condition to `/readyz`.
    pub fn ready_check(mut self, name: &'static str, check: ReadyCheck) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Serves `routes` (its own `/metrics`) on `listener`, an operator's port, and leaves
    /// `/metrics` off the service's port: for a service whose port tenants reach (the
    /// gateway's public API edge) and whose metrics name every tenant.
    pub fn operator_port(mut self, listener: tokio::net::TcpListener, routes: Router) -> Self {
        self.operator = Some((listener, routes));
        self
    }

    /// Verifies tokens with `verifier` instead of the configured JWKS (the auth service
    /// verifies against its own key ring).
    pub fn verifier(mut self, verifier: Arc<Verifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }
}
