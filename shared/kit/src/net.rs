//! Networks in CIDR notation (`10.0.0.0/8`, `fc00::/7`, or a bare address for one host): the
//! one parser and matcher behind every setting that names networks (the outbound policy's
//! allowed and denied networks, the trusted proxies of the services and the gateway).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network. Host bits are cleared when parsed, so `10.1.2.3/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CIDR network such as 10.0.0.0/8 or fc00::/7")]
pub struct BadCidr(pub String);

impl Cidr {
    /// `network/prefix`; `None` if the prefix is longer than the address.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Self> {
        let max = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= max).then(|| Self {
            network: mask(network, prefix),
            prefix,
        })
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`,
    /// what a dual-stack socket reports) is the IPv4 address it maps; other IPv6 forms that
    /// embed an IPv4 address are the caller's to judge (the outbound policy does, see
    /// `egress::policy::canonical`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.network
            }
            _ => false,
        }
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(prefix)))
            };
            IpAddr::V4(kept.into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(prefix)))
            };
            IpAddr::V6(kept.into())
        }
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let trimmed = s.trim();
        let (ip, prefix) = match trimmed.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (trimmed, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| bad())?;
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None if ip.is_ipv4() => 32,
            None => 128,
        };
        Self::new(ip, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Networks as a setting gives them: comma-separated CIDRs, blanks ignored (so an empty
/// variable means none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<Cidr>);

impl Networks {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any of the networks holds `ip`.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

impl FromStr for Networks {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, BadCidr> {
        s.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_lists_networks_and_may_be_empty() {
        let n: Networks = " 10.0.0.0/8, ::1 ,".parse().unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8,::1/128");
        assert_eq!("".parse::<Networks>().unwrap(), Networks::default());
        assert!("10.0.0.0/8,nope".parse::<Networks>().is_err());
    }

    #[test]
    fn parses_networks_and_single_hosts() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.255.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let host: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(host.to_string(), "192.0.2.7/32");
        let v6: Cidr = "fc00::/7".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.9.9.9".parse().unwrap()),
            "IPv4-mapped IPv6 is its IPv4 address"
        );
        assert!(
            !"0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "localhost",
            "10.0.0/8",
            "10.0.0.0/x",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
    }
}
