//! Which addresses outbound calls made on a tenant's word may reach.
//!
//! Decided on one address, in this order (the first rule that matches wins):
//! 1. the platform's own listen addresses (and its NATS, Postgres and Redis): always refused;
//! 2. the operator's denied networks (`TENANTRY_EGRESS_DENY`): refused;
//! 3. the operator's allowed networks (`TENANTRY_EGRESS_ALLOW`): allowed;
//! 4. the built-in denied ranges ([`DEFAULT_DENIED`]: loopback, link-local with the cloud
//!    metadata address, private and shared ranges, multicast, broadcast, unspecified): refused;
//! 5. anything else (the public internet): allowed.
//!
//! IPv6 forms that carry an IPv4 address (`::ffff:127.0.0.1`, `::127.0.0.1`, NAT64 and 6to4)
//! are judged as that IPv4 address, so no spelling of a refused address gets through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::CommonConfig;
use crate::net::Cidr;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("is one of the platform's own addresses")]
    Platform,
    #[error("is in a network the operator denies (TENANTRY_EGRESS_DENY)")]
    Operator,
    #[error("is a {0} address, refused unless the operator allows it (TENANTRY_EGRESS_ALLOW)")]
    Range(&'static str),
}

/// The networks refused unless allowed, each with the name its refusal gives.
pub const DEFAULT_DENIED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("224.0.0.0/4", "multicast"),
    // Reserved, with the limited broadcast address 255.255.255.255 at its end.
    ("240.0.0.0/4", "reserved or broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "private (unique local)"),
    ("fec0::/10", "private (site-local)"),
    ("ff00::/8", "multicast"),
    // Teredo hides its IPv4 address; nothing legitimate needs a tenant's backend there.
    ("2001::/32", "Teredo tunnel"),
];

/// The outbound policy: what the operator configured plus the platform's own addresses.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    defaults: Vec<(Cidr, &'static str)>,
    /// Exact sockets, or a port on every loopback and unspecified address for a service
    /// listening on all interfaces.
    own: Vec<SocketAddr>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

impl EgressPolicy {
    pub fn new(allow: Vec<Cidr>, deny: Vec<Cidr>) -> Self {
        let defaults = DEFAULT_DENIED
            .iter()
            .filter_map(|(net, why)| net.parse().ok().map(|c| (c, *why)))
            .collect();
        Self {
            allow,
            deny,
            defaults,
            own: Vec::new(),
        }
    }

    /// The operator's settings, with the infrastructure `common` names (NATS, Postgres, the
    /// JWKS endpoint) as the platform's own addresses.
    pub fn from_config(common: &CommonConfig) -> Self {
        let own = [&common.nats_url, &common.database_url, &common.jwks]
            .into_iter()
            .flat_map(|url| endpoint_of(url))
            .collect::<Vec<_>>();
        Self::new(common.egress_allow.0.clone(), common.egress_deny.0.clone()).with_own(own)
    }

    /// Adds addresses of the platform (a service's listeners, the services it calls): they
    /// are refused whatever the networks allowed.
    pub fn with_own(mut self, addresses: impl IntoIterator<Item = SocketAddr>) -> Self {
        for a in addresses {
            let a = SocketAddr::new(canonical(a.ip()), a.port());
            if !self.own.contains(&a) {
                self.own.push(a);
            }
        }
        self
    }

    /// Also refuses the host:port of `url` (`scheme://host:port/...`), when it names an
    /// address or `localhost`; a URL naming another host is skipped.
    pub fn with_own_url(self, url: &str) -> Self {
        let own = endpoint_of(url);
        self.with_own(own)
    }

    /// Also allows `network` past the built-in denied ranges (the platform's own sockets and
    /// the operator's denied networks stay refused). Only for addresses the platform itself
    /// allocated, such as a tenant's dedicated instances, never for one a tenant names.
    pub fn allowing(mut self, network: Cidr) -> Self {
        self.allow.push(network);
        self
    }

    /// Whether the operator allowed loopback (as `tenantry dev` does).
    pub fn allows_loopback(&self) -> bool {
        self.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_ok()
    }

    /// The verdict on `ip` by networks alone (every rule but the platform's own sockets).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        let ip = canonical(ip);
        if self.deny.iter().any(|c| c.contains(ip)) {
            return Err(Denied::Operator);
        }
        if self.allow.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        match self.defaults.iter().find(|(c, _)| c.contains(ip)) {
            Some((_, why)) => Err(Denied::Range(why)),
            None => Ok(()),
        }
    }

    /// The verdict on connecting to `addr`.
    pub fn check(&self, addr: SocketAddr) -> Result<(), Denied> {
        let ip = canonical(addr.ip());
        if self.is_own(ip, addr.port()) {
            return Err(Denied::Platform);
        }
        self.check_ip(ip)
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|own| {
            own.port() == port
                && (own.ip() == ip
                    // A listener on all interfaces answers on every loopback address too.
                    || (own.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
                    // Any loopback address with a loopback listener's port: the same host,
                    // and refusing the other aliases costs nothing.
                    || (own.ip().is_loopback() && ip.is_loopback())
                    || (ip.is_unspecified() && own.ip().is_loopback()))
        })
    }
}

/// The IPv4 address an IPv6 address stands for, if it embeds one the network would reach:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`)
/// and 6to4 (`2002:AABB:CCDD::`). Every other address is returned as is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low = |a: u16, b: u16| Ipv4Addr::from((u32::from(a) << 16) | u32::from(b));
    // `::` and `::1` are IPv6's own unspecified and loopback addresses, judged as such.
    if s[..6] == [0; 6] && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST {
        return IpAddr::V4(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(low(s[1], s[2]));
    }
    ip
}

/// The socket of a URL's authority, when it is an IP address or `localhost` (both loopback
/// addresses then). Names are skipped: the platform's own names are the operator's to deny.
fn endpoint_of(url: &str) -> Vec<SocketAddr> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let default_port = match scheme {
        "nats" => 4222,
        "postgres" | "postgresql" => 5432,
        "redis" => 6379,
        "https" => 443,
        _ => 80,
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return Vec::new(),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(p) => p,
            Err(_) => return Vec::new(),
        },
        None => default_port,
    };
    if host.eq_ignore_ascii_case("localhost") {
        return vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ];
    }
    host.parse::<IpAddr>()
        .map(|ip| vec![SocketAddr::new(ip, port)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn by_default_only_public_addresses_are_reachable() {
        let p = EgressPolicy::default();
        for refused in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "0.0.0.0",
            "::",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            // IPv4 hidden in IPv6.
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(
                p.check_ip(ip(refused)).is_err(),
                "{refused} must be refused"
            );
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(p.check_ip(ip(allowed)), Ok(()), "{allowed}");
        }
        assert_eq!(
            p.check_ip(ip("169.254.169.254")),
            Err(Denied::Range("link-local (cloud metadata)"))
        );
    }

    #[test]
    fn the_operator_allows_and_denies_and_deny_wins() {
        let p = EgressPolicy::new(
            vec![
                "127.0.0.0/8".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ],
            vec!["10.9.0.0/16".parse().unwrap(), "8.8.8.8".parse().unwrap()],
        );
        assert!(p.allows_loopback());
        assert_eq!(p.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(p.check_ip(ip("10.1.0.1")), Ok(()));
        assert_eq!(p.check_ip(ip("10.9.0.1")), Err(Denied::Operator));
        assert_eq!(p.check_ip(ip("8.8.8.8")), Err(Denied::Operator));
        assert!(p.check_ip(ip("192.168.0.1")).is_err(), "not allowed");
        assert!(!EgressPolicy::default().allows_loopback());
    }

    #[test]
    fn the_platforms_own_addresses_stay_refused_when_their_network_is_allowed() {
        let p = EgressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![])
            .with_own([
                "127.0.0.1:7000".parse().unwrap(),
                "0.0.0.0:7001".parse().unwrap(),
            ])
            .with_own_url("nats://localhost:4222");
        let refused = [
            "127.0.0.1:7000",
            "127.0.0.2:7000",
            "[::ffff:127.0.0.1]:7000",
            "0.0.0.0:7000",
            "127.0.0.1:7001",
            "[::1]:7001",
            "127.0.0.1:4222",
            "[::1]:4222",
        ];
        for a in refused {
            assert_eq!(p.check(a.parse().unwrap()), Err(Denied::Platform), "{a}");
        }
        assert_eq!(p.check("127.0.0.1:9000".parse().unwrap()), Ok(()));
    }

    #[test]
    fn a_network_allowed_for_the_platforms_instances_keeps_own_sockets_and_operator_denials_refused()
     {
        let p = EgressPolicy::new(vec![], vec!["127.0.0.2".parse().unwrap()])
            .with_own(["127.0.0.1:7000".parse().unwrap()])
            .allowing("127.0.0.0/8".parse().unwrap());
        assert_eq!(p.check("127.0.0.1:43121".parse().unwrap()), Ok(()));
        assert_eq!(
            p.check("127.0.0.1:7000".parse().unwrap()),
            Err(Denied::Platform)
        );
        assert_eq!(
            p.check("127.0.0.2:43121".parse().unwrap()),
            Err(Denied::Operator)
        );
        assert!(
            p.check("10.0.0.1:80".parse().unwrap()).is_err(),
            "only that network"
        );
    }

    #[test]
    fn endpoints_of_urls() {
        assert_eq!(
            endpoint_of("postgres://postgres@127.0.0.1:5432/tenantry?sslmode=disable"),
            vec!["127.0.0.1:5432".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            endpoint_of("http://[::1]:7002/.well-known/jwks.json"),
            vec!["[::1]:7002".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            endpoint_of("nats://127.0.0.1"),
            vec!["127.0.0.1:4222".parse::<SocketAddr>().unwrap()]
        );
        assert!(endpoint_of("/tmp/jwks.json").is_empty());
        assert!(endpoint_of("nats://nats.internal:4222").is_empty());
    }
}
