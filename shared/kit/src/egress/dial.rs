//! [`Egress`]: the policy and a resolver together, for the two moments a target is judged:
//! when it is configured ([`Egress::vet`]) and when a connection is opened to it
//! ([`Egress::connect`], which connects only to an address it has just checked, so a name
//! that resolves elsewhere since (DNS rebinding) gains nothing).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::policy::{Denied, EgressPolicy};
use super::resolve::{Resolver, SystemResolver};

/// How long a configuration-time lookup may take before the target is accepted unresolved
/// (it is checked again at every connection).
const VET_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("{0:?} is not host:port")]
    BadTarget(String),
    #[error("{target} ({addr}) {reason}")]
    Denied {
        target: String,
        addr: SocketAddr,
        reason: Denied,
    },
    #[error("{target}: {source}")]
    Resolve {
        target: String,
        source: std::io::Error,
    },
    #[error("connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("connect to {target}: no answer within {timeout:?}")]
    Timeout { target: String, timeout: Duration },
}

impl EgressError {
    /// The policy refused the target (rather than the network failing to reach it).
    pub fn is_denied(&self) -> bool {
        matches!(self, Self::Denied { .. })
    }
}

/// The outbound policy with the resolver it judges names through. Cheap to share.
pub struct Egress {
    policy: EgressPolicy,
    resolver: Arc<dyn Resolver>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Egress {
    pub fn new(policy: EgressPolicy, resolver: Arc<dyn Resolver>) -> Self {
        Self { policy, resolver }
    }

    /// The policy with the system's resolver.
    pub fn system(policy: EgressPolicy) -> Self {
        Self::new(policy, Arc::new(SystemResolver))
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    pub fn resolver(&self) -> &Arc<dyn Resolver> {
        &self.resolver
    }

    /// Every address `host` stands for now, with `port` where the resolver gave none.
    pub async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found =
            self.resolver
                .lookup(host, port)
                .await
                .map_err(|source| EgressError::Resolve {
                    target: format!("{host}:{port}"),
                    source,
                })?;
        Ok(found
            .into_iter()
            .map(|a| {
                if a.port() == 0 {
                    SocketAddr::new(a.ip(), port)
                } else {
                    a
                }
            })
            .collect())
    }

    /// Judges every address `host:port` resolves to now: the first refused one is the error.
    /// A name that does not resolve is not refused (there is nothing to judge yet).
    pub async fn check_all(&self, host: &str, port: u16) -> Result<(), EgressError> {
        let target = format!("{host}:{port}");
        let Ok(found) = self.lookup(host, port).await else {
            return Ok(());
        };
        for addr in found {
            self.policy
                .check(addr)
                .map_err(|reason| EgressError::Denied {
                    target: target.clone(),
                    addr,
                    reason,
                })?;
        }
        Ok(())
    }

    /// Configuration time: `target` (`host:port`) must not be, or resolve to, a refused
    /// address. A name that does not resolve within a short wait is accepted: it is judged
    /// again at every connection.
    pub async fn vet(&self, target: &str) -> Result<(), EgressError> {
        let (host, port) =
            split_host_port(target).ok_or_else(|| EgressError::BadTarget(target.to_owned()))?;
        match tokio::time::timeout(VET_LOOKUP_TIMEOUT, self.check_all(host, port)).await {
            Ok(verdict) => verdict,
            Err(_) => Ok(()),
        }
    }

    /// The addresses of `host:port` the policy allows; refused when it allows none.
    pub async fn allowed(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let target = format!("{host}:{port}");
        let mut first_refusal = None;
        let mut allowed = Vec::new();
        for addr in self.lookup(host, port).await? {
            match self.policy.check(addr) {
                Ok(()) => allowed.push(addr),
                Err(reason) => {
                    first_refusal.get_or_insert(EgressError::Denied {
                        target: target.clone(),
                        addr,
                        reason,
                    });
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(refusal),
            (true, None) => Err(EgressError::Resolve {
                target,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            }),
        }
    }

    /// Opens a TCP connection to `target` (`host:port`): resolved now, every address judged,
    /// and only an allowed one connected to, all within `timeout`.
    pub async fn connect(&self, target: &str, timeout: Duration) -> Result<TcpStream, EgressError> {
        let (host, port) =
            split_host_port(target).ok_or_else(|| EgressError::BadTarget(target.to_owned()))?;
        let attempt = async {
            let mut last = None;
            for addr in self.allowed(host, port).await? {
                match TcpStream::connect(addr).await {
                    Ok(tcp) => return Ok(tcp),
                    Err(e) => last = Some(e),
                }
            }
            Err(EgressError::Connect {
                target: target.to_owned(),
                source: last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
            })
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| EgressError::Timeout {
                target: target.to_owned(),
                timeout,
            })?
    }
}

/// `host:port`, `a.b.c.d:port` or `[v6]:port` split in two (the brackets stay off the host).
pub fn split_host_port(target: &str) -> Option<(&str, u16)> {
    if let Some(rest) = target.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port.parse().ok()?));
    }
    let (host, port) = target.rsplit_once(':')?;
    if host.is_empty() || host.contains(':') {
        return None;
    }
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::StaticResolver;

    fn loopback_allowed() -> EgressPolicy {
        EgressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()], vec![])
    }

    #[test]
    fn targets_split_into_host_and_port() {
        assert_eq!(split_host_port("a.example:80"), Some(("a.example", 80)));
        assert_eq!(split_host_port("[::1]:8080"), Some(("::1", 8080)));
        assert_eq!(split_host_port("10.0.0.1:1"), Some(("10.0.0.1", 1)));
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port(":80"), None);
    }

    #[tokio::test]
    async fn a_name_is_judged_by_every_address_it_resolves_to() {
        let resolver = StaticResolver::new()
            .with(
                "mixed.test",
                &[
                    "93.184.216.34:0".parse().unwrap(),
                    "10.0.0.1:0".parse().unwrap(),
                ],
            )
            .with("public.test", &["93.184.216.34:0".parse().unwrap()]);
        let egress = Egress::new(EgressPolicy::default(), Arc::new(resolver));
        let refused = egress.vet("mixed.test:80").await.unwrap_err();
        assert!(refused.is_denied(), "{refused}");
        assert!(refused.to_string().contains("10.0.0.1:80"), "{refused}");
        egress.vet("public.test:80").await.unwrap();
        egress.vet("unknown.test:80").await.unwrap();
        assert!(
            egress
                .vet("169.254.169.254:80")
                .await
                .unwrap_err()
                .is_denied()
        );
        assert!(
            egress
                .vet("[::ffff:127.0.0.1]:80")
                .await
                .unwrap_err()
                .is_denied()
        );
        assert_eq!(
            egress.allowed("mixed.test", 443).await.unwrap(),
            vec!["93.184.216.34:443".parse::<SocketAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn connect_reaches_only_allowed_addresses() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resolver = Arc::new(StaticResolver::new().others(&[addr]));
        let open = Egress::new(loopback_allowed(), resolver.clone());
        open.connect(
            &format!("anything.test:{}", addr.port()),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        let closed = Egress::new(EgressPolicy::default(), resolver);
        let refused = closed
            .connect(
                &format!("anything.test:{}", addr.port()),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(refused.is_denied(), "{refused}");
        let own = Egress::system(loopback_allowed().with_own([addr]));
        assert!(
            own.connect(&addr.to_string(), Duration::from_secs(2))
                .await
                .unwrap_err()
                .is_denied()
        );
    }
}
