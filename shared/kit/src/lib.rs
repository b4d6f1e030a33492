//! What every Tenantry service is built from.
//!
//! # Layout
//! - [`config`]: flags and `TENANTRY_*` environment variables shared by all services.
//! - [`telemetry`]: tracing, OpenTelemetry export and W3C trace context in and out.
//! - [`metrics`]: the Prometheus recorder behind `/metrics`.
//! - [`error`]: [`ApiError`], the one error type handlers return, and its `tonic::Status` mapping.
//! - [`auth`]: JWT verification against a JWKS, roles, the per-RPC access policy and the
//!   [`TenantContext`] put into every request.
//! - [`db`]: database, schema and service role preparation; pools; RLS-scoped transactions.
//! - [`command`]: building a command's metadata (idempotency key, actor, correlation).
//! - [`client_addr`]: the client behind a trusted proxy (`X-Forwarded-For`).
//! - [`clock`]: the time source, replaceable in tests.
//! - [`gwt`]: given events, when a command, then events: the harness of aggregate tests.
//! - [`nats`]: connecting to NATS with the service's settings.
//! - [`plans`]: each tenant's plan limits from billing's events, for the services that
//!   enforce one (custom domains, seats).
//! - [`net`]: networks in CIDR notation, for every setting that names some.
//! - [`service`]: the service template: the [`service::Service`] trait, [`service::run`]
//!   and a binary's [`service::main`].
//! - [`server`]: serving gRPC, health, reflection and HTTP endpoints on one port.
//! - [`http_shape`]: a service's JSON endpoints as thin adapters over its own gRPC API.
//! - [`egress`]: the outbound policy, and the one HTTP client for calls made on a tenant's
//!   word.
//! - [`connections`]: every listening port's connection caps and deadlines (the services' and
//!   the gateway's data plane).
//! - [`seal`]: tenants' secrets sealed under per-tenant data keys wrapped by a master key.

#![forbid(unsafe_code)]

pub mod auth;
pub mod client_addr;
pub mod clock;
pub mod command;
pub mod config;
pub mod connections;
pub mod db;
pub mod egress;
pub mod error;
pub mod gwt;
pub mod http_shape;
pub mod metrics;
pub mod nats;
pub mod net;
pub mod plans;
pub mod seal;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod validate;

pub use auth::{Access, Role, RpcPolicy, TenantContext};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ApiError, DomainError};

/// Installs rustls' ring provider for every TLS client in the process (reqwest is built
/// without a default provider). Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
