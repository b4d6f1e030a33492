//! Rate limiting: a lock-free GCRA per tenant, route and API key, made cluster-wide through
//! Redis.
//!
//! - [`gcra`]: one limiter, decided locally with a load and a compare-and-swap.
//! - [`cluster`]: the replicas' shared state in Redis: the short-interval sync of local
//!   admissions (local-first), the per-request check (strict mode, and a limiter's first
//!   request), and each replica's share of a limit while Redis is unreachable.

pub mod cluster;
pub mod gcra;

pub use cluster::{Cluster, ClusterConfig, Granted};
pub use gcra::{Decision, Gcra, Mode, Scope};
