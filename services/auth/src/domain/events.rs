//! The auth service's events: its contract lives in `tenantry-contracts`, where consumers
//! (every service's API-key directory) read it too.

pub use tenantry_contracts::auth::{
    CredentialEvent, IdentityProviderEvent, ServiceAccountEvent, SessionEvent, TeamEvent, UserEvent,
};
