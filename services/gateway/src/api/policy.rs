//! The role each RPC requires. An RPC missing here is denied to everyone.

use tenantry_kit::{Access, Role, RpcPolicy};

pub const SERVICE: &str = "tenantry.gateway.v1.GatewayConfigService";

pub fn policy() -> RpcPolicy {
    let mut p = RpcPolicy::new();
    let role = Access::Role;
    p.declare(SERVICE, "UpsertRoute", role(Role::Member))
        .declare(SERVICE, "RemoveRoute", role(Role::Member))
        .declare(SERVICE, "ListRoutes", role(Role::Viewer))
        .declare(SERVICE, "DrainBackend", role(Role::Member))
        .declare(SERVICE, "UndrainBackend", role(Role::Member));
    p
}
