//! Which peers are trusted proxies: their forwarding headers (`X-Forwarded-*`, `Forwarded`,
//! `X-Real-IP`, `True-Client-IP`) are kept, and they are exempt from the per-client connection
//! cap (they carry many clients' connections). Anyone else's forwarding headers are dropped:
//! a client could otherwise name any address or host to the backend.

use std::net::IpAddr;

/// An address block, `10.0.0.0/8` or `2001:db8::/32` (a bare address is a block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network, IPv4 addresses as IPv4-mapped IPv6.
    network: u128,
    /// Prefix length over the 128 bits (an IPv4 /8 is /104).
    bits: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let mask = mask(self.bits);
        widen(ip) & mask == self.network
    }
}

fn mask(bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits))
    }
}

/// IPv4 as IPv4-mapped IPv6, so one comparison serves both families.
fn widen(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (address, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let ip: IpAddr = address
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block"))?;
        let (offset, max) = match ip {
            IpAddr::V4(_) => (96, 32),
            IpAddr::V6(_) => (0, 128),
        };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        let bits = offset + bits;
        Ok(Self {
            network: widen(ip) & mask(bits),
            bits,
        })
    }
}

/// The configured trusted proxies.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// `10.0.0.0/8, 192.0.2.7`: comma-separated blocks; empty trusts no one. Errors name the
    /// setting and the entry.
    pub fn parse(value: &str) -> Result<Self, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|e| format!("gateway-trusted-proxies: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_of_either_family_match_their_addresses_only() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7,2001:db8::/32").unwrap();
        assert!(trusted.trusts(ip("10.1.2.3")));
        assert!(trusted.trusts(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!trusted.trusts(ip("11.0.0.1")));
        assert!(trusted.trusts(ip("192.0.2.7")));
        assert!(!trusted.trusts(ip("192.0.2.8")));
        assert!(trusted.trusts(ip("2001:db8:ffff::1")));
        assert!(!trusted.trusts(ip("2001:db9::1")));
        assert!(!trusted.trusts(ip("::a01:203")), "not an IPv4 address");
        assert!(!TrustedProxies::parse("").unwrap().trusts(ip("127.0.0.1")));
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .trusts(ip("8.8.8.8"))
        );
    }

    #[test]
    fn a_bad_entry_is_named() {
        let e = TrustedProxies::parse("10.0.0.0/8,10.0.0.0/33").unwrap_err();
        assert!(
            e.contains("gateway-trusted-proxies") && e.contains("10.0.0.0/33"),
            "{e}"
        );
        let e = TrustedProxies::parse("proxy.internal").unwrap_err();
        assert!(e.contains("proxy.internal"), "{e}");
    }
}
