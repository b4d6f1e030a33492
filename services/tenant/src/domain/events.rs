//! The tenant service's events: its contract lives in `tenantry-contracts`, where consumers
//! read it too.

pub use tenantry_contracts::tenant::{ReservationEvent, TenantEvent};
