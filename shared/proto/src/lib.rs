//! Generated code for Tenantry's protobuf APIs and events.
//!
//! # Layout
//! - [`events::v1`]: the event log's `EventBatch`/`Envelope` and every service's event payloads.
//! - [`auth::v1`]: the auth service API.
//! - [`billing::v1`]: the billing service API.
//! - [`gateway::v1`]: the gateway's configuration API.
//! - [`orchestration::v1`]: the orchestration service API (dedicated instances).
//! - [`sync::v1`]: the sync service API.
//! - [`tenant::v1`]: the tenant service API.
//! - [`FILE_DESCRIPTOR_SET`]: all of the above, for gRPC reflection.

#![allow(clippy::all, missing_docs)]

/// Every Tenantry proto file as an encoded `FileDescriptorSet`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tenantry_descriptor.bin"));

pub mod events {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.events.v1.rs"));
    }
}

pub mod auth {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.auth.v1.rs"));
    }
}

pub mod billing {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.billing.v1.rs"));
    }
}

pub mod gateway {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.gateway.v1.rs"));
    }
}

pub mod orchestration {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.orchestration.v1.rs"));
    }
}

pub mod sync {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.sync.v1.rs"));
    }
}

pub mod tenant {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/tenantry.tenant.v1.rs"));
    }
}
