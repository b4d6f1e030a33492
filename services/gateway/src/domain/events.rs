//! The events the gateway writes (`route`) and enforces (billing's `subscription`): both
//! contracts live in `tenantry-contracts`.

pub use tenantry_contracts::billing::SubscriptionEvent;
pub use tenantry_contracts::gateway::RouteEvent;
