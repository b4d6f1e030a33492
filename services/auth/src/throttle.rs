//! Attempts per client address, in a fixed one-minute window on each replica: failed logins,
//! sign-ups and federated logins begun.
//!
//! Per-account throttling (lockout) is in the credential aggregate and so cluster-wide; these
//! slow down one address spraying many accounts, creating accounts (each costs an argon2 hash
//! and two appends) or filling the pending-login table. The address is the client's as the
//! kit's [`tenantry_kit::client_addr`] finds it (behind a trusted proxy, from
//! `X-Forwarded-For`). IPv6 clients are counted per /64: one host usually holds a whole /64.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; the map is cleared of old windows when full.
const CAPACITY: usize = 100_000;

/// One limit's counts per address.
pub struct AddressThrottle {
    limit: u32,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The bucket `addr` is counted in: itself (IPv4), or its /64 (IPv6).
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

impl AddressThrottle {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            windows: Mutex::default(),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Whether `addr` may try again now (without counting this try).
    pub async fn allows(&self, addr: Option<IpAddr>) -> bool {
        let Some(addr) = addr else { return true };
        let windows = self.windows.lock().await;
        windows
            .get(&bucket(addr))
            .is_none_or(|(start, count)| start.elapsed() >= WINDOW || *count < self.limit)
    }

    /// Counts one attempt of `addr`.
    pub async fn record(&self, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        self.count(bucket(addr)).await;
    }

    /// Counts one attempt of `addr` and says whether it is within the limit.
    pub async fn admit(&self, addr: Option<IpAddr>) -> bool {
        let Some(addr) = addr else { return true };
        self.count(bucket(addr)).await <= self.limit
    }

    /// Adds one to `key`'s window and returns the count.
    async fn count(&self, key: IpAddr) -> u32 {
        let mut windows = self.windows.lock().await;
        if windows.len() >= CAPACITY {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }
}

/// The per-address limits of the public session RPCs.
pub struct Throttles {
    /// Failed logins (`auth-login-failures-per-addr`).
    pub login_failures: AddressThrottle,
    /// Sign-ups (`auth-signups-per-addr`).
    pub signups: AddressThrottle,
    /// Federated logins begun (`auth-oidc-logins-per-addr`).
    pub oidc_logins: AddressThrottle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_per_address_and_per_ipv6_64() {
        let t = AddressThrottle::new(2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.admit(Some(a)).await);
        assert!(t.admit(Some(same_64)).await);
        assert!(!t.admit(Some(a)).await, "one /64, one budget");
        assert!(t.admit(Some(other)).await);
        assert!(t.admit(None).await, "no address: not throttled");
        let v4 = AddressThrottle::new(1);
        v4.record(Some("10.0.0.1".parse().unwrap())).await;
        assert!(!v4.allows(Some("::ffff:10.0.0.1".parse().unwrap())).await);
        assert!(v4.allows(Some("10.0.0.2".parse().unwrap())).await);
    }
}
