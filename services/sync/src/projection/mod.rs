//! The sync service's read models.
//!
//! - [`integrations`]: one row per integration, folded by the aggregate's own `evolve`.
//! - [`queries`]: what the API reads from them.

pub mod integrations;
pub mod queries;
