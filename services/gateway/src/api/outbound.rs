//! What a tenant's routes may reach: the gateway's outbound policy (the operator's settings,
//! the gateway's own ports and the services and stores it talks to), and vetting a route's
//! backends against it when the route is configured. Connections are judged again when they
//! are opened (`proxy::pool`, `health`).

use std::net::SocketAddr;
use std::sync::Arc;

use tenantry_kit::ApiError;
use tenantry_kit::config::CommonConfig;
use tenantry_kit::egress::{Egress, EgressError, EgressPolicy, Resolver, SystemResolver};
use tenantry_proto::events::v1 as pb;

use crate::config::GatewayConfig;

/// The policy for the gateway listening on `own` (its data plane and API port), names
/// resolved by `resolver` (the system's when `None`).
pub fn egress(
    common: &CommonConfig,
    config: &GatewayConfig,
    own: &[SocketAddr],
    resolver: Option<Arc<dyn Resolver>>,
) -> Egress {
    let mut policy = EgressPolicy::from_config(common)
        .with_own(own.iter().copied())
        .with_own_url(&config.redis_url);
    for pair in config.services.split(',') {
        if let Some((_, address)) = pair.trim().split_once('=') {
            policy = policy.with_own_url(&format!("http://{address}"));
        }
    }
    if policy.allows_loopback() {
        tracing::warn!(
            "outbound policy: tenants' routes may reach loopback (TENANTRY_EGRESS_ALLOW); the platform's own ports stay refused"
        );
    }
    Egress::new(policy, resolver.unwrap_or_else(|| Arc::new(SystemResolver)))
}

/// Refuses a route whose backends are, or resolve to, addresses the policy refuses; the
/// error names the backend (`route.backends[i].address`). Names are resolved concurrently.
pub async fn vet_backends(egress: &Egress, backends: &[pb::Backend]) -> Result<(), ApiError> {
    let verdicts = futures::future::join_all(backends.iter().map(|b| egress.vet(&b.address))).await;
    for (i, (verdict, backend)) in verdicts.into_iter().zip(backends).enumerate() {
        let reason = match verdict {
            Err(EgressError::Denied { reason, .. }) => reason,
            // Not host:port: the route's own validation names it. Lookups that fail are not
            // refused (see `Egress::vet`).
            _ => continue,
        };
        let address = &backend.address;
        // The address a name resolved to stays in the logs: it would map the platform's
        // network for the tenant.
        let named = tenantry_kit::egress::split_host_port(address)
            .is_some_and(|(host, _)| host.parse::<std::net::IpAddr>().is_err());
        let why = if named {
            format!("{address} resolves to an address that {reason}")
        } else {
            format!("{address} {reason}")
        };
        tracing::info!(%address, %reason, "route backend refused by the outbound policy");
        return Err(ApiError::invalid(
            format!("route.backends[{i}].address"),
            why,
        ));
    }
    Ok(())
}
