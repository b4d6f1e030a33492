//! Name resolution for outbound calls: the system's resolver, or one a test (or an operator's
//! split-horizon setup) supplies. Whatever it answers is checked by the policy before a
//! connection is opened, so a resolver cannot widen what is reachable.

use std::collections::HashMap;
use std::net::SocketAddr;

use futures::future::BoxFuture;

/// Resolves a host name (never an IP literal: those are not looked up).
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host`. An address with port 0 takes the caller's `port`.
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, on a blocking thread).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Fixed answers: names to addresses, and what every other name resolves to (if anything).
/// For tests, and for deployments where a domain's proof must be fetched through a local
/// ingress.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    names: HashMap<String, Vec<SocketAddr>>,
    others: Vec<SocketAddr>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` resolves to `addresses` (port 0: the caller's port).
    pub fn with(mut self, name: &str, addresses: &[SocketAddr]) -> Self {
        self.names
            .insert(name.to_ascii_lowercase(), addresses.to_vec());
        self
    }

    /// Every name not given with [`StaticResolver::with`] resolves to `addresses`.
    pub fn others(mut self, addresses: &[SocketAddr]) -> Self {
        self.others = addresses.to_vec();
        self
    }
}

impl Resolver for StaticResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        _port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        let found = self
            .names
            .get(&host.to_ascii_lowercase())
            .unwrap_or(&self.others)
            .clone();
        Box::pin(async move {
            if found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host}: no such name"),
                ));
            }
            Ok(found)
        })
    }
}
