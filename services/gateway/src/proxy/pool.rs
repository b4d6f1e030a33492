//! Upstream connections of one worker thread: per backend, a stack of idle HTTP/1.1
//! connections and one shared HTTP/2 connection (h2c).
//!
//! hyper-util's pooled client was a sixth of the gateway's instructions per request (measured
//! with callgrind): it hashes a (scheme, authority) key with SipHash twice per request and
//! moves each request through several futures. Here a backend's connections are found by the
//! backend itself (its `Arc`, held by the pool so the address cannot be reused), and an
//! HTTP/1.1 connection goes back on the stack when its response body ends.
//!
//! The pool belongs to one worker (each runs its own single-threaded runtime), so its lock is
//! never contended and never held across an `.await`.

#![allow(clippy::disallowed_types)] // std Mutex: per worker, uncontended, not held across awaits

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tenantry_kit::egress::EgressError;

use crate::snapshot::BackendState;

/// A request body, cut off (with an error) past the body limit or its deadline.
pub type Limited = http_body_util::Limited<super::body::Timed>;

/// Idle HTTP/1.1 connections kept per backend and worker; more are closed.
const MAX_IDLE: usize = 512;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Resolving, the outbound policy's verdict on the address, or the TCP connect.
    #[error(transparent)]
    Dial(#[from] EgressError),
    #[error("handshake with {0}: {1}")]
    Handshake(String, hyper::Error),
}

/// Hashes a pointer: a multiply spreads its (aligned, low-zero) bits.
#[derive(Default)]
struct PointerHasher(u64);

impl Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01B3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Entry {
    /// Keeps the backend's address (the key) from being reused while the entry exists.
    backend: Arc<BackendState>,
    idle: Vec<http1::SendRequest<Limited>>,
    h2: Option<http2::SendRequest<Limited>>,
}

#[derive(Default)]
pub struct Pool {
    entries: Mutex<HashMap<usize, Entry, BuildHasherDefault<PointerHasher>>>,
}

fn key(backend: &Arc<BackendState>) -> usize {
    Arc::as_ptr(backend) as usize
}

impl Pool {
    fn with_entry<T>(&self, backend: &Arc<BackendState>, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !entries.contains_key(&key(backend)) {
            // A new backend: forget those no snapshot holds any more.
            entries.retain(|_, e| Arc::strong_count(&e.backend) > 1);
        }
        let entry = entries.entry(key(backend)).or_insert_with(|| Entry {
            backend: backend.clone(),
            idle: Vec::new(),
            h2: None,
        });
        f(entry)
    }

    /// An HTTP/1.1 connection to `backend` ready for a request: the most recently used idle
    /// one that is still open, or a new one.
    pub async fn http1(
        &self,
        backend: &Arc<BackendState>,
    ) -> Result<http1::SendRequest<Limited>, ConnectError> {
        while let Some(mut sender) = self.with_entry(backend, |e| e.idle.pop()) {
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        // Boxed: connecting is rare, and its future would make every request's larger (and
        // every request's future is moved a few times before it first runs).
        Box::pin(open_http1(backend)).await
    }

    /// Puts an HTTP/1.1 connection whose response has ended back for the next request.
    pub fn give_back(&self, backend: &Arc<BackendState>, sender: http1::SendRequest<Limited>) {
        if sender.is_closed() {
            return;
        }
        self.with_entry(backend, |e| {
            if e.idle.len() < MAX_IDLE {
                e.idle.push(sender);
            }
        });
    }

    /// The HTTP/2 connection to `backend`, opened on first use and after it closes.
    pub async fn http2(
        &self,
        backend: &Arc<BackendState>,
    ) -> Result<http2::SendRequest<Limited>, ConnectError> {
        if let Some(sender) = self.with_entry(backend, |e| e.h2.clone())
            && !sender.is_closed()
        {
            return Ok(sender);
        }
        Box::pin(self.open_http2(backend)).await
    }

    async fn open_http2(
        &self,
        backend: &Arc<BackendState>,
    ) -> Result<http2::SendRequest<Limited>, ConnectError> {
        let io = connect(backend).await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| ConnectError::Handshake(backend.address.clone(), e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.with_entry(backend, |e| e.h2 = Some(sender.clone()));
        Ok(sender)
    }
}

async fn open_http1(
    backend: &Arc<BackendState>,
) -> Result<http1::SendRequest<Limited>, ConnectError> {
    let io = connect(backend).await?;
    // One buffer per write, as on the clients' connections (`serve_on`).
    let (sender, connection) = http1::Builder::new()
        .writev(false)
        .handshake(io)
        .await
        .map_err(|e| ConnectError::Handshake(backend.address.clone(), e))?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

/// A new connection to `backend`: its address resolved now and judged by the outbound
/// policy (a name that resolved to an allowed address when the route was configured may
/// resolve to the platform's network since). Only here, when a connection is opened: a
/// request on a pooled connection pays nothing for it.
async fn connect(backend: &BackendState) -> Result<TokioIo<tokio::net::TcpStream>, ConnectError> {
    let tcp = backend
        .egress
        .connect(&backend.address, CONNECT_TIMEOUT)
        .await
        .inspect_err(|e| {
            if e.is_denied() {
                tracing::warn!(backend = %backend.address, error = %e, "connection refused by the outbound policy");
            }
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(TokioIo::new(tcp))
}

/// A response body from an HTTP/1.1 backend that hands its connection back to the pool when
/// it ends (a body dropped early takes its connection with it).
pub struct Returning {
    pub inner: Incoming,
    pub back: Option<(Arc<Pool>, Arc<BackendState>, http1::SendRequest<Limited>)>,
}

impl Returning {
    fn done(&mut self) {
        if let Some((pool, backend, sender)) = self.back.take() {
            pool.give_back(&backend, sender);
        }
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        // A body that was empty from the start is never polled to its end.
        if self.inner.is_end_stream() {
            self.done();
        }
    }
}

impl hyper::body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.done(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.done(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
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
