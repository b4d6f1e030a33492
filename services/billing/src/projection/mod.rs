//! Billing's read models, projected from the event log (the usage roll-up, from the `USAGE`
//! stream, is in [`crate::usage`]).
//!
//! - [`catalog`]: the `plans` table.
//! - [`subscriptions`]: one row per subscription, and the `alerts` its crossings raised.
//! - [`trials`]: a tenant's creation opens its subscription (a trial on its type's plan).
//! - [`queries`]: what the API and the jobs read.

pub mod catalog;
pub mod queries;
pub mod subscriptions;
pub mod trials;
