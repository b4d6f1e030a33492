//! The outbound policy: where the platform may connect on a tenant's word (route backends and
//! their health checks, domain proofs, OIDC discovery, token and key fetches).
//!
//! A tenant names a host; without a policy the platform would connect to whatever that host
//! is — its own API ports, the cloud metadata service, NATS — and hand the answer back (SSRF).
//! Each target is judged when it is configured and again, on the address actually resolved,
//! whenever a connection is opened, so a name that later resolves elsewhere (DNS rebinding)
//! gains nothing. ADR 0006 records the decision.
//!
//! # Layout
//! - [`cidr`]: networks in CIDR notation, as the operator writes them.
//! - [`policy`]: [`EgressPolicy`], the verdict on one address (defaults, the operator's
//!   allowed and denied networks, the platform's own addresses).
//! - [`resolve`]: the [`Resolver`] names go through (the system's, or fixed answers).
//! - [`dial`]: [`Egress`], policy plus resolver: vetting a configured target, and opening a
//!   TCP connection only to an allowed address.
//! - [`http`]: [`OutboundHttp`], the one HTTP client for such calls: the policy on every
//!   address, no redirect to another host, capped answers, deadlines, no upstream body in
//!   errors.

pub mod dial;
pub mod http;
pub mod policy;
pub mod resolve;

pub use dial::{Egress, EgressError, split_host_port};
pub use http::{Fetched, HttpLimits, OutboundError, OutboundHttp};
pub use policy::{Denied, EgressPolicy};
pub use resolve::{Resolver, StaticResolver, SystemResolver};
