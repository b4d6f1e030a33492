//! Who the client is when a proxy sits in front: `X-Forwarded-For`, believed only from peers
//! the operator named as trusted proxies.
//!
//! Behind the gateway every call arrives from the gateway's address, so anything keyed by the
//! TCP peer (the login throttle) would put every client in one bucket. A client can write any
//! `X-Forwarded-For` it likes, though, so the header counts only when the peer is a trusted
//! proxy, and then only up to the first hop that is not itself trusted: walking the list from
//! the right, each trusted proxy vouches for the hop before it, and the first untrusted hop is
//! the client. Whatever a client wrote further left is never read.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::net::{BadCidr, Networks};

/// The header a proxy appends its peer's address to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// Hops read from the right at most: a longer chain of trusted proxies is not believable.
const MAX_HOPS: usize = 20;

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose forwarding headers are believed. Empty (the default): none, the TCP
/// peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Networks);

impl FromStr for TrustedProxies {
    type Err = BadCidr;

    /// Comma-separated blocks: `10.0.0.0/8, 127.0.0.1`.
    fn from_str(s: &str) -> Result<Self, BadCidr> {
        s.parse().map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then, reading the
    /// `X-Forwarded-For` values (in the order received) from the right, the first hop that is
    /// not a trusted proxy. A hop that does not parse ends the walk at the last proxy, which
    /// is then the best that is known.
    pub fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops = forwarded_for
            .rev()
            .flat_map(|value| value.rsplit(','))
            .take(MAX_HOPS);
        for hop in hops {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return client;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`,
/// `[2001:db8::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse().ok())
        })
        .map(canonical)
}

/// The client address of a gRPC request: its TCP peer, or who a trusted proxy says the peer's
/// client was. `None` when the server recorded no peer (in-process calls).
pub fn client_addr<T>(request: &tonic::Request<T>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = crate::server::client_addr(request)?;
    if trusted.is_empty() {
        return Some(peer);
    }
    let values: Vec<&str> = request
        .metadata()
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(trusted.client(peer, values.into_iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn proxies_parse_and_match() {
        let list: TrustedProxies = " 10.0.0.0/8 ,127.0.0.1,".parse().unwrap();
        assert!(list.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped IPv6");
        assert!(!list.contains(ip("127.0.0.2")));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert_eq!(list.to_string(), "10.0.0.0/8,127.0.0.1/32");
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let proxy = ip("10.0.0.5");
        // The client's own claim sits left of what the proxy appended: never read.
        assert_eq!(
            trusted.client(proxy, ["6.6.6.6, 203.0.113.7"].into_iter()),
            ip("203.0.113.7")
        );
        // Two proxies: the inner one's address is skipped, ports are dropped.
        assert_eq!(
            trusted.client(proxy, ["198.51.100.1:4431", "10.0.0.9"].into_iter()),
            ip("198.51.100.1")
        );
        assert_eq!(
            trusted.client(proxy, ["[2001:db8::1]:443"].into_iter()),
            ip("2001:db8::1")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            trusted.client(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        // No header, or garbage where the proxy's entry should be: the proxy itself.
        assert_eq!(trusted.client(proxy, [].into_iter()), proxy);
        assert_eq!(trusted.client(proxy, ["1.2.3.4, junk"].into_iter()), proxy);
        // Nobody trusted: the header means nothing.
        assert_eq!(
            TrustedProxies::default().client(proxy, ["1.2.3.4"].into_iter()),
            proxy
        );
    }
}
