//! Failed logins per client address, in a fixed one-minute window on each replica.
//!
//! Per-account throttling (lockout) is in the credential aggregate and so cluster-wide; this
//! one slows down one address spraying many accounts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the map is cleared of old windows when full.
const CAPACITY: usize = 100_000;

pub struct AddressThrottle {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AddressThrottle {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::default(),
        }
    }

    /// Whether `addr` may try again now.
    pub async fn allows(&self, addr: Option<IpAddr>) -> bool {
        let Some(addr) = addr else { return true };
        let windows = self.windows.lock().await;
        windows
            .get(&addr)
            .is_none_or(|(start, count)| start.elapsed() >= WINDOW || *count < self.limit)
    }

    pub async fn record_failure(&self, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        let mut windows = self.windows.lock().await;
        if windows.len() >= CAPACITY {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}
