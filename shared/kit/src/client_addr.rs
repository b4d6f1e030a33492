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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// The header a proxy appends its peer's address to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// Hops read from the right at most: a longer chain of trusted proxies is not believable.
const MAX_HOPS: usize = 20;

/// An address block, `10.0.0.0/8` or `fd00::/8` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(ip)), self.prefix, 32) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix, 128) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `value` with all but its first `prefix` of `bits` bits cleared.
fn masked(value: u128, prefix: u8, bits: u32) -> u128 {
    let keep = u32::from(prefix).min(bits);
    if keep == 0 {
        return 0;
    }
    // `keep` is at least 1, so the host part is at most 127 bits and the shift is defined.
    let host = (1u128 << (bits - keep)) - 1;
    let width = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    value & width & !host
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network = canonical(
            addr.parse::<IpAddr>()
                .map_err(|_| format!("{s:?} is not an address or CIDR block"))?,
        );
        let bits: u8 = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {bits}"))?,
        };
        let network = match network {
            IpAddr::V4(v4) => {
                IpAddr::V4(Ipv4Addr::from(
                    masked(u128::from(u32::from(v4)), prefix, 32) as u32,
                ))
            }
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(masked(u128::from(v6), prefix, 128))),
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none, the TCP peer
/// is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated blocks: `10.0.0.0/8, 127.0.0.1`.
    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, block) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{block}")?;
        }
        Ok(())
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
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
    fn blocks_parse_and_match() {
        let block: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(block.to_string(), "10.0.0.0/8");
        assert!(block.contains(ip("10.255.0.1")));
        assert!(block.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped IPv6");
        assert!(!block.contains(ip("11.0.0.1")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in ["10.0.0.0/33", "::/129", "ten", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let list: TrustedProxies = " 10.0.0.0/8 ,127.0.0.1,".parse().unwrap();
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
