//! The gateway's view of the world: an immutable snapshot of hosts, tenants, routes and
//! limits, swapped atomically whenever the event log says something changed. The request path
//! reads it without a lock and without I/O.
//!
//! - [`model`]: what a snapshot holds, and the runtime state (rate limiters, backend
//!   counters) that carries over from one snapshot to the next.
//! - [`builder`]: folds events into the next snapshot.
//! - [`deployments`]: tenants' dedicated instances, the backends of routes to a deployment.
//! - [`follow`]: reads the log from the start and keeps the snapshot current.
//! - [`metrics`]: each route's request counts, latency and bytes, and their rendering for
//!   `/metrics` from the current snapshot (a removed route's series go with it).

pub mod builder;
pub mod deployments;
pub mod follow;
pub mod metrics;
pub mod model;

pub use model::{BackendState, RouteEntry, Snapshot, TenantEntry, TenantStatus};
