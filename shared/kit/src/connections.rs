//! The connections of a listening port, from accept to close: which are let in, and how long
//! each may live without doing anything useful.
//!
//! Shared by every service's port ([`crate::server::serve`]) and the gateway's data plane:
//! - [`Admission`]: a cap on open connections per port and per client address. A connection
//!   over either cap is closed at once, before anything is read from it.
//! - [`drive`]: runs a hyper connection under two deadlines. From accept, the first request
//!   must start within the header timeout (TLS handshake, HTTP version detection, the first
//!   head or HTTP/2 `HEADERS` all count), else the socket is dropped: a client that sends
//!   nothing, or half an HTTP/2 preface, holds nothing. After that, a connection on which no
//!   request started and none ran for an idle timeout is shut down gracefully (HTTP/2 has no
//!   idle timeout of its own; HTTP/1.1's header-read timeout already closes idle keep-alives).
//! - [`Activity`]: what [`drive`] reads: requests started and finished on the connection, two
//!   relaxed counters the request path bumps.

#![allow(clippy::disallowed_types)] // std Mutex: held for one map update at accept and close, never across an await

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::server::graceful::GracefulConnection;

/// Caps on a port's open connections.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Open connections on the port at once.
    pub total: usize,
    /// Open connections from one client address (IPv6: one /64) at once.
    pub per_client: usize,
}

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The port holds [`Caps::total`] connections.
    Total,
    /// The client's address holds [`Caps::per_client`].
    PerClient,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "connections",
            Refused::PerClient => "connections_per_client",
        }
    }
}

/// Open connections of one port, in all and per client address.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    /// Names the port in the refusal metric.
    port: &'static str,
    total: AtomicUsize,
    /// Only addresses with a connection open: the map is no larger than the connections are.
    per_client: Mutex<HashMap<ClientKey, usize>>,
}

/// The unit a per-client cap counts: an IPv4 address, or an IPv6 /64 (one host's usual
/// allocation, so a client cannot pass the cap by walking its own prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(u128);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(u128::from(u32::from(v4))),
                // The top bit set keeps IPv6 keys apart from IPv4 ones.
                None => Self((u128::from(v6) & !((1u128 << 64) - 1)) | (1 << 127)),
            },
        }
    }
}

/// An admitted connection: its place in the counts, given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    /// `None` for a client exempt from the per-client cap.
    client: Option<ClientKey>,
}

impl Admission {
    pub fn new(port: &'static str, caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            port,
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// Lets a connection from `ip` in, or says which cap it is over (and counts the refusal in
    /// `tenantry_connections_refused_total{port, reason}`). `exempt` clients (a trusted proxy
    /// in front, carrying many clients' connections) count against the total only.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Result<Admitted, Refused> {
        let refused = |reason: Refused| {
            metrics::counter!("tenantry_connections_refused_total", "port" => self.port, "reason" => reason.as_str())
                .increment(1);
            reason
        };
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.caps.total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(refused(Refused::Total));
        }
        let client = (!exempt).then(|| ClientKey::of(ip));
        if let Some(key) = client {
            let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            let open = per_client.entry(key).or_insert(0);
            if *open >= self.caps.per_client {
                if *open == 0 {
                    per_client.remove(&key);
                }
                drop(per_client);
                self.total.fetch_sub(1, Ordering::Relaxed);
                return Err(refused(Refused::PerClient));
            }
            *open += 1;
        }
        Ok(Admitted {
            admission: self.clone(),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let admission = &self.admission;
        if let Some(key) = self.client {
            let mut per_client = admission
                .per_client
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(open) = per_client.get_mut(&key) {
                *open -= 1;
                if *open == 0 {
                    per_client.remove(&key);
                }
            }
        }
        admission.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Requests started and finished on one connection.
#[derive(Debug, Default)]
pub struct Activity {
    started: AtomicU64,
    finished: AtomicU64,
}

/// A request running on a connection (see [`Activity::begin`]).
#[derive(Debug)]
pub struct Busy<'a>(&'a Activity);

impl Activity {
    /// Marks a request as started; the connection is busy until the guard is dropped.
    pub fn begin(&self) -> Busy<'_> {
        self.started.fetch_add(1, Ordering::Relaxed);
        Busy(self)
    }

    /// Requests started so far, and whether one is running.
    fn state(&self) -> (u64, bool) {
        // Finished first: a request counted there was counted as started before.
        let finished = self.finished.load(Ordering::Acquire);
        let started = self.started.load(Ordering::Acquire);
        (started, started > finished)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Release);
    }
}

/// How long a connection may go without a request.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// When the first request must have started (accept + the header timeout).
    pub first_request_by: Instant,
    /// A connection with no request started or running for this long is shut down gracefully;
    /// it is noticed within one to two of these (checked from `first_request_by` on).
    pub idle: Duration,
}

/// Runs `connection` until it ends, `shutdown` resolves (then it is shut down gracefully: open
/// requests finish), or a deadline passes: a connection on which no request started by
/// [`Deadlines::first_request_by`] is dropped at once, one idle for [`Deadlines::idle`] is shut
/// down gracefully. `timer` is the one the connection's hyper builder uses.
pub async fn drive<C, T>(
    connection: C,
    activity: &Activity,
    deadlines: Deadlines,
    timer: &T,
    shutdown: impl Future<Output = ()>,
) where
    C: GracefulConnection,
    T: hyper::rt::Timer,
{
    let mut connection = std::pin::pin!(connection);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut check = timer.sleep_until(deadlines.first_request_by);
    // Requests started as of the last check.
    let mut seen = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            _ = connection.as_mut() => return,
            () = &mut shutdown, if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = check.as_mut(), if !closing => {
                let (started, busy) = activity.state();
                if started == 0 {
                    // Nothing asked within the header timeout: drop the socket.
                    return;
                }
                if !busy && started == seen {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                } else {
                    seen = started;
                    check = timer.sleep(deadlines.idle);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caps_count_per_port_and_per_client_and_give_back_on_drop() {
        let admission = Admission::new(
            "test",
            Caps {
                total: 3,
                per_client: 2,
            },
        );
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = admission.admit(a, false).unwrap();
        let _a2 = admission.admit(a, false).unwrap();
        assert_eq!(admission.admit(a, false).unwrap_err(), Refused::PerClient);
        let _b1 = admission.admit(b, false).unwrap();
        assert_eq!(admission.admit(b, false).unwrap_err(), Refused::Total);
        assert_eq!(admission.open(), 3);
        drop(a1);
        assert_eq!(admission.open(), 2);
        let _a3 = admission.admit(a, false).unwrap();
        assert_eq!(admission.open(), 3);
    }

    #[test]
    fn an_exempt_client_counts_against_the_total_only() {
        let admission = Admission::new(
            "test",
            Caps {
                total: 3,
                per_client: 1,
            },
        );
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        let held: Vec<_> = (0..3)
            .map(|_| admission.admit(proxy, true).unwrap())
            .collect();
        assert_eq!(admission.admit(proxy, true).unwrap_err(), Refused::Total);
        drop(held);
        assert!(admission.per_client.lock().unwrap().is_empty());
    }

    #[test]
    fn an_ipv6_client_is_one_slash_64_and_a_mapped_ipv4_is_its_ipv4() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("::a00:1"), key("10.0.0.1"));
    }
}
