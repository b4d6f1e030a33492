//! The route aggregate: `<tenant>.route.<route_id>`.

use std::collections::BTreeSet;

use tenantry_eventstore::{Aggregate, EventMeta};
use tenantry_proto::events::v1 as pb;

use super::DomainError;
use super::events::RouteEvent;

pub const MAX_BACKENDS: usize = 64;
pub const MAX_HOSTS: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Route {
    /// The settings as last upserted; `None` before creation and after removal.
    pub config: Option<pb::RouteUpserted>,
    pub drained: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub enum RouteCommand {
    /// A route under an id the server just minted: it must not exist yet (a retry of the
    /// same creation, with the same settings, changes nothing).
    Create(pb::RouteUpserted),
    /// New settings for an existing route of the tenant.
    Update(pb::RouteUpserted),
    Remove,
    Drain {
        address: String,
    },
    Undrain {
        address: String,
    },
}

/// Checks a route's settings; each error names its field.
pub fn validate(route: &pb::RouteUpserted) -> Result<(), DomainError> {
    if route.hosts.len() > MAX_HOSTS {
        return Err(DomainError::invalid(
            "route.hosts",
            format!("at most {MAX_HOSTS}"),
        ));
    }
    for (i, host) in route.hosts.iter().enumerate() {
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !ok {
            return Err(DomainError::Invalid {
                field: "route.hosts",
                reason: format!("[{i}] {host:?} is not a host name"),
            });
        }
    }
    if !route.path_prefix.starts_with('/') || route.path_prefix.len() > 1024 {
        return Err(DomainError::invalid(
            "route.path_prefix",
            "must start with / (at most 1024 characters)",
        ));
    }
    if route
        .path_prefix
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(DomainError::invalid(
            "route.path_prefix",
            "must not contain spaces",
        ));
    }
    let algorithm = pb::BalanceAlgorithm::try_from(route.algorithm)
        .ok()
        .filter(|a| *a != pb::BalanceAlgorithm::Unspecified)
        .ok_or_else(|| DomainError::invalid("route.algorithm", "is required"))?;
    if algorithm == pb::BalanceAlgorithm::HeaderHash
        && (route.hash_header.is_empty() || http_header_name_invalid(&route.hash_header))
    {
        return Err(DomainError::invalid(
            "route.hash_header",
            "a header name is required for header_hash",
        ));
    }
    if !route.deployment_id.is_empty() {
        // A deployment's instances are the backends: orchestration says where they listen.
        if uuid::Uuid::try_parse(&route.deployment_id).is_err() {
            return Err(DomainError::invalid(
                "route.deployment_id",
                "must be a deployment id",
            ));
        }
        if !route.backends.is_empty() {
            return Err(DomainError::invalid(
                "route.backends",
                "must be empty when route.deployment_id is set",
            ));
        }
    } else if route.backends.is_empty() || route.backends.len() > MAX_BACKENDS {
        return Err(DomainError::invalid(
            "route.backends",
            format!("must list 1 to {MAX_BACKENDS} backends (or set route.deployment_id)"),
        ));
    }
    if pb::UpstreamProtocol::try_from(route.upstream_protocol).is_err() {
        return Err(DomainError::invalid(
            "route.upstream_protocol",
            "unknown protocol",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, b) in route.backends.iter().enumerate() {
        if b.address.parse::<std::net::SocketAddr>().is_err() && !host_port(&b.address) {
            return Err(DomainError::Invalid {
                field: "route.backends",
                reason: format!("[{i}] {:?} is not host:port", b.address),
            });
        }
        if !seen.insert(&b.address) {
            return Err(DomainError::Invalid {
                field: "route.backends",
                reason: format!("[{i}] {} is listed twice", b.address),
            });
        }
        if b.weight > 1000 {
            return Err(DomainError::Invalid {
                field: "route.backends",
                reason: format!("[{i}] weight must be at most 1000"),
            });
        }
    }
    if let Some(h) = &route.health_check
        && !h.path.is_empty()
        && (!h.path.starts_with('/') || h.interval_ms < 100)
    {
        return Err(DomainError::invalid(
            "route.health_check",
            "path must start with / and interval_ms be at least 100",
        ));
    }
    Ok(())
}

fn http_header_name_invalid(name: &str) -> bool {
    http::HeaderName::from_bytes(name.as_bytes()).is_err()
}

fn host_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

impl Aggregate for Route {
    type Command = RouteCommand;
    type Event = RouteEvent;
    type Error = DomainError;

    fn decide(&self, command: &RouteCommand) -> Result<Vec<RouteEvent>, DomainError> {
        match command {
            RouteCommand::Create(config) | RouteCommand::Update(config) => {
                validate(config)?;
                if self.config.as_ref() == Some(config) {
                    return Ok(vec![]);
                }
                match (command, &self.config) {
                    (RouteCommand::Create(_), Some(_)) => {
                        return Err(DomainError::AlreadyExists("route".into()));
                    }
                    (RouteCommand::Update(_), None) => {
                        return Err(DomainError::NotFound("route".into()));
                    }
                    _ => {}
                }
                Ok(vec![RouteEvent::Upserted(config.clone())])
            }
            RouteCommand::Remove => {
                let config = self.require()?;
                Ok(vec![RouteEvent::Removed(pb::RouteRemoved {
                    route_id: config.route_id.clone(),
                })])
            }
            RouteCommand::Drain { address } | RouteCommand::Undrain { address } => {
                let config = self.require()?;
                if !config.backends.iter().any(|b| b.address == *address) {
                    return Err(DomainError::NotFound(format!("backend {address}")));
                }
                let drain = matches!(command, RouteCommand::Drain { .. });
                if self.drained.contains(address) == drain {
                    return Ok(vec![]);
                }
                Ok(vec![if drain {
                    RouteEvent::BackendDrained(pb::BackendDrained {
                        address: address.clone(),
                    })
                } else {
                    RouteEvent::BackendUndrained(pb::BackendUndrained {
                        address: address.clone(),
                    })
                }])
            }
        }
    }

    fn evolve(&mut self, event: &RouteEvent, _meta: &EventMeta) {
        match event {
            RouteEvent::Upserted(c) => {
                self.drained
                    .retain(|a| c.backends.iter().any(|b| b.address == *a));
                self.config = Some(c.clone());
            }
            RouteEvent::Removed(_) => *self = Self::default(),
            RouteEvent::BackendDrained(d) => {
                self.drained.insert(d.address.clone());
            }
            RouteEvent::BackendUndrained(d) => {
                self.drained.remove(&d.address);
            }
        }
    }
}

impl Route {
    fn require(&self) -> Result<&pb::RouteUpserted, DomainError> {
        self.config
            .as_ref()
            .ok_or_else(|| DomainError::NotFound("route".into()))
    }
}

#[cfg(test)]
mod tests;
