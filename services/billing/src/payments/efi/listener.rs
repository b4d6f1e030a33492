//! The Pix webhook listener: TLS that requires Efí's client certificate, then HTTP/1.1 or h2
//! serving [`super::webhook::router`].
//!
//! A port of its own, apart from the service's port: Efí calls it from the Internet with
//! mutual TLS, which the service's own port (behind the gateway) does not speak. Each
//! connection is capped and timed like every other listening port of the platform
//! (`tenantry_kit::connections`); the handshake counts against the first request's deadline,
//! so a client that opens a socket and stalls holds nothing for long.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tenantry_kit::connections::{Activity, Admission, Caps, Deadlines, drive};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::webhook::{Deliver, router};

/// From accept, the handshake and the first request head must be done within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Efí holds a connection open between notifications; an idle one is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Open connections at once. Not capped per client: Efí posts from a few addresses only.
const MAX_CONNECTIONS: usize = 512;

/// Serves the webhook on an already bound `listener` until `shutdown` resolves, then lets
/// the notifications in flight finish.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    deliver: Deliver,
    shutdown: impl Future<Output = ()>,
) {
    let router = router(deliver);
    let admission = Admission::new(
        "efi_webhook",
        Caps {
            total: MAX_CONNECTIONS,
            per_client: MAX_CONNECTIONS,
        },
    );
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    // Each connection's task holds a sender: once all are dropped, every connection ended.
    let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: pause rather than spin.
                    tracing::warn!(error = %e, "efi webhook accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(admitted) = admission.admit(peer.ip(), false) else {
            continue;
        };
        let deadlines = Deadlines {
            first_request_by: Instant::now() + HEADER_TIMEOUT,
            idle: IDLE_TIMEOUT,
        };
        let _ = tcp.set_nodelay(true);
        let (router, acceptor, builder) = (router.clone(), acceptor.clone(), builder.clone());
        let (done, mut stopped) = (done.clone(), stopped.clone());
        tokio::spawn(async move {
            let _held = (admitted, done);
            let handshake =
                tokio::time::timeout_at(deadlines.first_request_by.into(), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return refused(peer, &e.to_string()),
                Err(_) => return refused(peer, "handshake timed out"),
            };
            let activity = Arc::new(Activity::default());
            let service = {
                let activity = activity.clone();
                hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (router, activity) = (router.clone(), activity.clone());
                    async move {
                        let _busy = activity.begin();
                        router.oneshot(request).await
                    }
                })
            };
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let stopping = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            drive(
                connection,
                &activity,
                deadlines,
                &TokioTimer::new(),
                stopping,
            )
            .await;
        });
    }
    let _ = stop.send(true);
    drop(done);
    let _ = all_done.recv().await;
}

/// A client turned away during the handshake: no certificate, one Efí did not issue, or no
/// TLS at all. Expected from scanners and from Efí's own check at registration, so only a
/// counter and a debug line; a sudden rise while payments stop arriving means Efí's
/// certificate changed.
fn refused(peer: SocketAddr, error: &str) {
    metrics::counter!("efi_webhook_handshakes_refused_total").increment(1);
    tracing::debug!(%peer, error, "efi webhook handshake refused");
}
