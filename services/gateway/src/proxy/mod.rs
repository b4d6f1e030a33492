//! The data plane: HTTP/1.1 and HTTP/2 (h2c) from clients, pooled connections to backends.
//!
//! For each request: `Host` → tenant (404) → tenant status (403) → route by path (404) →
//! quota (429) → rate limit (429) → backend (503) → forward (502 on failure).
//! Everything before the forward reads the current snapshot: no lock, no I/O.
//!
//! Connections are capped per gateway and per client address and timed from accept (see
//! `tenantry_kit::connections`); requests are capped per gateway and per tenant (its share).
//!
//! - [`respond`]: the gateway's own answers (JSON errors, rate-limit headers).
//! - [`forward`]: forwarding headers and the upstream call; [`pool`]: upstream connections.
//! - [`body`]: request bodies' read deadline; [`tunnel`]: upgraded connections.
//! - [`trust`]: which peers are trusted proxies.
//! - [`tls`]: TLS with ALPN, when a certificate is configured.
//! - [`timer`]: the deadlines (header read, upstream response) of one worker.

pub mod body;
pub mod forward;
pub mod pool;
pub mod respond;
pub mod timer;
pub mod tls;
pub mod tunnel;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use tenantry_kit::connections::{Admission, Caps, Deadlines, drive};

use crate::decide::{Forward, Refusal, decide, is_tighter};
use crate::limit::{Cluster, Decision, Gcra, Granted, Mode};
use crate::snapshot::follow::Current;
use forward::Upstream;
use respond::{error, rate_limited};
use tenantry_kit::client_addr::TrustedProxies;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// Edge limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From accept, the first request head must arrive within this (TLS handshake and HTTP
    /// version detection included), and every later HTTP/1.1 head too (slowloris).
    pub header_read_timeout: Duration,
    /// A connection with no request for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// HTTP/2 pings on a quiet connection, and as long for the answer; `None`: no pings.
    pub h2_keep_alive: Option<Duration>,
    /// Open client connections at once, in all and per client address (IPv6: per /64).
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// A request head larger than this is refused with 431.
    pub max_header_bytes: usize,
    /// A request body larger than this is refused with 413.
    pub max_body_bytes: u64,
    /// A request body must have arrived whole within this of its head; 408 beyond.
    pub body_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// Requests in flight at once on this gateway; beyond it, 503 at once (load shedding)
    /// rather than a queue that grows without bound.
    pub max_in_flight: usize,
    /// A tenant's requests in flight at once when its plan sets no share; beyond it, 503 for
    /// that tenant only.
    pub tenant_max_in_flight: u32,
    /// Longest wait for a backend's response head; 504 beyond.
    pub upstream_timeout: Duration,
    /// An upgraded connection idle this long either way is closed.
    pub tunnel_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            h2_keep_alive: Some(Duration::from_secs(20)),
            max_connections: 10_000,
            max_connections_per_client: 256,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            body_timeout: Duration::from_secs(60),
            max_concurrent_streams: 256,
            max_in_flight: 10_000,
            tenant_max_in_flight: 1_000,
            upstream_timeout: Duration::from_secs(60),
            tunnel_idle_timeout: Duration::from_secs(120),
        }
    }
}

pub struct Proxy {
    pub snapshot: Current,
    pub upstream: Upstream,
    pub limits: Limits,
    pub cluster: Arc<Cluster>,
    /// TLS on the data plane; `None`: plain HTTP/1.1 and h2c.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Peers whose forwarding headers are kept.
    pub trusted: Arc<TrustedProxies>,
    /// Shared by every worker: the load-shedding count is per gateway.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Shared by every worker: the connection caps are per gateway.
    connections: Arc<Admission>,
}

/// Gives the in-flight slot back however the request ends.
struct Slot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Proxy {
    pub fn new(snapshot: Current, limits: Limits, cluster: Arc<Cluster>) -> Self {
        let connections = Admission::new(
            "data_plane",
            Caps {
                total: limits.max_connections,
                per_client: limits.max_connections_per_client,
            },
        );
        Self {
            snapshot,
            upstream: Upstream::new(limits.upstream_timeout),
            limits,
            cluster,
            tls: None,
            trusted: Arc::default(),
            in_flight: Arc::default(),
            connections,
        }
    }

    /// The same proxy for another worker thread: its own upstream pool, shared everything else.
    fn for_worker(&self) -> Self {
        Self {
            snapshot: self.snapshot.clone(),
            upstream: Upstream::new(self.limits.upstream_timeout),
            limits: self.limits.clone(),
            cluster: self.cluster.clone(),
            tls: self.tls.clone(),
            trusted: self.trusted.clone(),
            in_flight: self.in_flight.clone(),
            connections: self.connections.clone(),
        }
    }

    /// Answers one request: the service of every client connection.
    ///
    /// One `async fn` from the connection to the upstream call, taking what it needs by value:
    /// a request's future is moved whole at each level of `.await` nesting before it first
    /// runs, so each level costs a copy of it.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: Arc<forward::Peer>,
        secure: bool,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        // The connection is busy until the response head is out (its idle deadline waits).
        let _busy = peer.activity.begin();
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= self.limits.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            refused("overloaded");
            return Ok(error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", None));
        }
        let _slot = Slot(&self.in_flight);
        // hyper knows the declared length (0 for no body, none for a chunked one).
        let bytes_in = request.body().size_hint().exact();
        if bytes_in.is_some_and(|n| n > self.limits.max_body_bytes) {
            return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None));
        }
        let bytes_in = bytes_in.unwrap_or(0);
        let Some(host) = forward::host_of(&request) else {
            return Ok(error(StatusCode::BAD_REQUEST, "missing_host", None));
        };
        let snapshot = self.snapshot.load();
        let started = std::time::Instant::now();
        let mode = self.cluster.mode();
        let decided = decide(
            &snapshot,
            &host,
            request.uri().path(),
            request.headers(),
            mode,
            started,
        );
        let Forward {
            tenant,
            route,
            backend,
            tightest,
            ask,
            admitted,
        } = match decided {
            Ok(forward) => forward,
            Err(refusal) => return Ok(refuse(refusal)),
        };
        // The tenant's share of the requests in flight: one tenant whose backend never
        // answers (or whose clients never finish their bodies) fills its share, not the
        // gateway's.
        let usage = tenant.usage.clone();
        let Some(_share) = usage.enter(self.limits.tenant_max_in_flight) else {
            for limiter in admitted.iter().flatten() {
                limiter.refund(mode);
            }
            refused("tenant_in_flight");
            route
                .metrics()
                .record(StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO);
            return Ok(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "tenant_overloaded",
                Some(tenant.tenant_id),
            ));
        };
        let route = route.clone();
        let backend = backend.state.clone();
        let mut tightest = tightest.map(|(limiter, left)| (limiter.clone(), left));
        // Limiters only Redis can decide (strict mode, a limiter's first request) are asked
        // after the snapshot is let go; the usual request clones nothing for them.
        let asked = ask.iter().any(Option::is_some).then(|| Asked {
            tenant: tenant.clone(),
            ask: ask.map(|a| a.cloned()),
            admitted: admitted.map(|a| a.cloned()),
            mode,
        });
        drop(snapshot);
        if let Some(asked) = asked {
            // Boxed: strict mode's one allocation beside a Redis round trip, and the usual
            // request's future stays small.
            match Box::pin(self.ask_cluster(asked, &route, tightest)).await {
                Ok(t) => tightest = t,
                Err(refused) => return Ok(refused),
            }
        }
        let host = host.into_owned();

        backend.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self
            .upstream
            .send(
                request,
                &backend,
                forward::Origin {
                    host: &host,
                    peer: &peer,
                    secure,
                },
                route.upstream_h2c,
                forward::BodyLimits {
                    max: self.limits.max_body_bytes,
                    deadline: started + self.limits.body_timeout,
                },
            )
            .await;
        backend.in_flight.fetch_sub(1, Ordering::Relaxed);
        let mut response = match result {
            Ok(response) => {
                if response.status().is_server_error() {
                    backend.record_failure();
                } else {
                    backend.record_success();
                }
                response
            }
            Err(forward::SendError::Timeout(_)) => {
                backend.record_failure();
                error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", None)
            }
            Err(e) if e.body_too_large() => {
                error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None)
            }
            // The client's fault, not the backend's: no failure marked against it.
            Err(e) if e.body_timed_out() => {
                error(StatusCode::REQUEST_TIMEOUT, "body_timeout", None)
            }
            Err(e) => {
                tracing::debug!(backend = %backend.address, error = %e, "upstream failed");
                backend.record_failure();
                error(StatusCode::BAD_GATEWAY, "bad_gateway", None)
            }
        };
        if response.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(splice) = response.extensions_mut().remove::<forward::Splice>()
        {
            tunnel::spawn(
                splice,
                tunnel::Tunnel {
                    in_flight: self.in_flight.clone(),
                    usage: usage.clone(),
                    route: route.shared_metrics(),
                    peer: peer.clone(),
                    idle_timeout: self.limits.tunnel_idle_timeout,
                },
            );
        }
        if let Some((limiter, remaining)) = &tightest {
            respond::rate_limit_headers(response.headers_mut(), limiter, *remaining);
        }
        let response = count_bytes(response, bytes_in, &usage, &route);
        route.metrics().record(response.status(), started.elapsed());
        Ok(response)
    }
}

/// A request's limiters that only the cluster can decide, and what the others did.
struct Asked {
    tenant: Arc<crate::snapshot::model::TenantEntry>,
    ask: [Option<Arc<Gcra>>; 3],
    admitted: [Option<Arc<Gcra>>; 3],
    mode: Mode,
}

type Tightest = Option<(Arc<Gcra>, u32)>;

impl Proxy {
    /// Asks Redis for each limiter that needs it: the tightest limit then, or the refusal.
    /// A refused request gives back what every other limiter granted it, here or in Redis.
    async fn ask_cluster(
        &self,
        asked: Asked,
        route: &crate::snapshot::model::RouteEntry,
        mut tightest: Tightest,
    ) -> Result<Tightest, Response<Body>> {
        let mut granted: [Option<Granted>; 3] = [None; 3];
        for (i, limiter) in asked.ask.iter().enumerate() {
            let Some(limiter) = limiter else { continue };
            match self.cluster.ask(limiter).await {
                (Decision::Deny { retry_after }, _) => {
                    for admitted in asked.admitted.iter().flatten() {
                        admitted.refund(asked.mode);
                    }
                    for (earlier, granted) in asked.ask.iter().zip(granted) {
                        if let (Some(earlier), Some(granted)) = (earlier, granted) {
                            self.cluster.give_back(earlier, granted).await;
                        }
                    }
                    return Err(refuse(Refusal::RateLimited(
                        &asked.tenant,
                        route,
                        limiter,
                        retry_after,
                    )));
                }
                (Decision::Allow { remaining }, how) => {
                    granted[i] = Some(how);
                    if is_tighter(limiter, remaining, tightest.as_ref().map(|(_, r)| *r)) {
                        tightest = Some((limiter.clone(), remaining));
                    }
                }
                (Decision::AskCluster, _) => {}
            }
        }
        Ok(tightest)
    }
}

/// Requests the gateway answered itself before any tenant's route was chosen, by reason.
fn refused(reason: &'static str) {
    metrics::counter!("tenantry_gateway_refused_total", "reason" => reason).increment(1);
}

/// The gateway's own answer to a refused request (and its metrics).
fn refuse(refusal: Refusal<'_>) -> Response<Body> {
    match refusal {
        Refusal::UnknownHost => {
            refused("unknown_host");
            error(StatusCode::NOT_FOUND, "unknown_host", None)
        }
        Refusal::Suspended(t) => {
            error(StatusCode::FORBIDDEN, "tenant_suspended", Some(t.tenant_id))
        }
        Refusal::Decommissioned(t) => error(
            StatusCode::FORBIDDEN,
            "tenant_decommissioned",
            Some(t.tenant_id),
        ),
        Refusal::NoRoute(t) => error(StatusCode::NOT_FOUND, "no_route", Some(t.tenant_id)),
        Refusal::QuotaExceeded(t, r) => {
            t.metrics().quota_blocked.increment(1);
            r.metrics()
                .record(StatusCode::TOO_MANY_REQUESTS, Duration::ZERO);
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                Some(t.tenant_id),
            )
        }
        Refusal::RateLimited(t, r, limiter, retry_after) => {
            t.metrics().rate_limited.increment(1);
            r.metrics()
                .record(StatusCode::TOO_MANY_REQUESTS, Duration::ZERO);
            rate_limited(limiter, retry_after)
        }
        Refusal::NoHealthyBackend(t) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_healthy_backend",
            Some(t.tenant_id),
        ),
    }
}

/// Counts a forwarded request's body bytes, and its response's, into the tenant's usage and
/// the route's metrics: the response's at once when its length is declared, else as the body
/// streams out.
fn count_bytes(
    response: Response<Body>,
    bytes_in: u64,
    usage: &Arc<crate::usage::Usage>,
    route: &crate::snapshot::model::RouteEntry,
) -> Response<Body> {
    use http_body_util::BodyExt;
    usage.add_request(bytes_in);
    // What follows a 101 is the upgraded connection, not a body.
    let declared = if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        Some(0)
    } else {
        response.body().size_hint().exact()
    };
    route.metrics().add_bytes(bytes_in, declared.unwrap_or(0));
    match declared {
        Some(n) => {
            usage.add_bytes_out(n);
            response
        }
        None => {
            let (usage, route) = (usage.clone(), route.shared_metrics());
            response.map(|body| {
                Counted {
                    inner: body,
                    usage,
                    route,
                }
                .boxed()
            })
        }
    }
}

/// A response body that reports its bytes as they pass.
struct Counted {
    inner: Body,
    usage: Arc<crate::usage::Usage>,
    route: Arc<std::sync::OnceLock<crate::snapshot::model::RouteMetrics>>,
}

impl hyper::body::Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.usage.add_bytes_out(n);
            if let Some(route) = self.route.get() {
                route.add_bytes(0, n);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serves the data plane on `listener` until `shutdown` resolves; open connections finish
/// their requests first.
///
/// One worker thread per core, each with its own single-threaded runtime accepting from the
/// same socket and its own upstream pool: a request, its upstream call and its response stay
/// on one thread (no work stealing, no cross-thread wake-ups, no shared pool lock).
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let shared = match listener.into_std() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "data plane listener");
            return;
        }
    };
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers {
        let socket = match shared.try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "data plane listener clone");
                continue;
            }
        };
        let proxy = Arc::new(proxy.for_worker());
        let mut stopped = stopped.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("gateway-worker-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "gateway worker runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(socket) else {
                        tracing::error!("gateway worker listener");
                        return;
                    };
                    serve_on(listener, proxy, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
                });
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => tracing::error!(error = %e, "gateway worker thread"),
        }
    }
    shutdown.await;
    let _ = stop.send(true);
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
}

/// One worker's accept loop: connections over a cap are closed at once; the others are
/// served under their deadlines (see `tenantry_kit::connections::drive`).
async fn serve_on(listener: TcpListener, proxy: Arc<Proxy>, shutdown: impl Future<Output = ()>) {
    let limits = proxy.limits.clone();
    let timer = proxy.upstream.timer.clone();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(timer.clone())
        .header_read_timeout(limits.header_read_timeout)
        // One buffer per write, the head and a small body copied together: fewer instructions
        // a request than hyper's queue of buffers for `writev` (callgrind, bench/README).
        .writev(false)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(timer.clone())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(limits.h2_keep_alive);
    if let Some(keep_alive) = limits.h2_keep_alive {
        builder.http2().keep_alive_timeout(keep_alive);
    }
    // Each connection's task holds a sender: once all are dropped, every connection has ended.
    let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let trusted = proxy.trusted.contains(addr.ip());
        // Dropping the socket closes it: nothing is read from a connection over a cap.
        let Ok(admitted) = proxy.connections.admit(addr.ip(), trusted) else {
            continue;
        };
        let deadlines = Deadlines {
            first_request_by: std::time::Instant::now() + limits.header_read_timeout,
            idle: limits.idle_timeout,
        };
        let _ = tcp.set_nodelay(true);
        let secure = proxy.tls.is_some();
        let tls = proxy.tls.clone();
        let peer = Arc::new(forward::Peer::new(addr, trusted, Some(admitted)));
        let (done, timer, builder) = (done.clone(), timer.clone(), builder.clone());
        let mut stopped = stopped.clone();
        let stopping = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let service = {
            let (proxy, peer) = (proxy.clone(), peer.clone());
            hyper::service::service_fn(move |request| {
                proxy.clone().handle(request, peer.clone(), secure)
            })
        };
        tokio::spawn(async move {
            let _done = done;
            let activity = &peer.activity;
            match tls {
                None => {
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    drive(connection, activity, deadlines, &timer, stopping).await;
                }
                Some(acceptor) => {
                    // The handshake counts against the first request's deadline (a slow
                    // handshake is a slowloris too).
                    let handshake = tokio::time::timeout_at(
                        deadlines.first_request_by.into(),
                        acceptor.accept(tcp),
                    );
                    let Ok(Ok(stream)) = handshake.await else {
                        return;
                    };
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    drive(connection, activity, deadlines, &timer, stopping).await;
                }
            }
        });
    }
    let _ = stop.send(true);
    drop(done);
    let _ = all_done.recv().await;
}
