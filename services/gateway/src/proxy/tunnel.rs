//! Upgraded connections (WebSocket): after a backend's `101`, the client's connection and the
//! backend's are spliced, byte for byte, until either side closes or nothing passes for the
//! idle timeout.
//!
//! A tunnel is traffic like any request: it holds a place among the gateway's and its tenant's
//! requests in flight (so a tenant's sockets count against its share, not everyone's), its
//! connection's place under the connection caps, and its bytes count in the tenant's usage and
//! the route's metrics as they pass.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::forward::{Peer, Splice};
use crate::snapshot::model::RouteMetrics;
use crate::usage::{HeldInFlight, Usage};

/// What a tunnel holds and counts into while it lives.
pub struct Tunnel {
    /// The gateway's requests in flight (load shedding).
    pub in_flight: Arc<AtomicUsize>,
    pub usage: Arc<Usage>,
    pub route: Arc<std::sync::OnceLock<RouteMetrics>>,
    /// Keeps the client connection's place under the connection caps.
    pub peer: Arc<Peer>,
    /// Closed after this long with nothing passing either way.
    pub idle_timeout: Duration,
}

/// Gives a place among the gateway's requests in flight back when the tunnel ends.
struct GatewaySlot(Arc<AtomicUsize>);

impl Drop for GatewaySlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes the tunnel's places now (before the request that opened it gives its own back), then
/// splices the two sides on a task of their own.
pub fn spawn(splice: Splice, tunnel: Tunnel) {
    tunnel.in_flight.fetch_add(1, Ordering::Relaxed);
    let held = (GatewaySlot(tunnel.in_flight.clone()), tunnel.usage.hold());
    tokio::spawn(run(splice, tunnel, held));
}

async fn run(splice: Splice, tunnel: Tunnel, _held: (GatewaySlot, HeldInFlight)) {
    let (client, backend) = match (splice.client.await, splice.backend.await) {
        (Ok(c), Ok(b)) => (c, b),
        (c, b) => {
            tracing::warn!(client = ?c.err(), backend = ?b.err(), "upgrade failed");
            return;
        }
    };
    let moved = AtomicBool::new(false);
    let route = tunnel.route.get();
    let mut client = Metered {
        io: TokioIo::new(client),
        count: &|n| {
            tunnel.usage.add_bytes_in(n);
            if let Some(route) = route {
                route.add_bytes(n, 0);
            }
        },
        moved: &moved,
    };
    let mut backend = Metered {
        io: TokioIo::new(backend),
        count: &|n| {
            tunnel.usage.add_bytes_out(n);
            if let Some(route) = route {
                route.add_bytes(0, n);
            }
        },
        moved: &moved,
    };
    let mut spliced = std::pin::pin!(tokio::io::copy_bidirectional(&mut client, &mut backend));
    loop {
        tokio::select! {
            _ = &mut spliced => return,
            () = tokio::time::sleep(tunnel.idle_timeout) => {
                if !moved.swap(false, Ordering::Relaxed) {
                    tracing::debug!(client = %tunnel.peer.addr, "idle tunnel closed");
                    return;
                }
            }
        }
    }
}

/// One side of a tunnel: counts what is read from it (the client's bytes are bytes in, the
/// backend's bytes out) and notes that something passed.
struct Metered<'a, T> {
    io: T,
    count: &'a (dyn Fn(u64) + Sync),
    moved: &'a AtomicBool,
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            (self.count)(n as u64);
            self.moved.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
