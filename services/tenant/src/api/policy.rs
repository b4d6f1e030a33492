//! The role each RPC requires. An RPC missing here is denied to everyone.

use tenantry_kit::{Access, Role, RpcPolicy};

pub const SERVICE: &str = "tenantry.tenant.v1.TenantService";

pub fn policy() -> RpcPolicy {
    let mut p = RpcPolicy::new();
    let role = Access::Role;
    p.declare(SERVICE, "CreateTenant", role(Role::PlatformAdmin))
        .declare(SERVICE, "GetTenant", role(Role::Viewer))
        .declare(SERVICE, "ListTenants", role(Role::Viewer))
        .declare(SERVICE, "UpdateSettings", role(Role::Member))
        .declare(SERVICE, "SetFeatureFlags", role(Role::Member))
        .declare(SERVICE, "AddDomain", role(Role::Member))
        .declare(SERVICE, "VerifyDomain", role(Role::Member))
        .declare(SERVICE, "RemoveDomain", role(Role::Member))
        .declare(SERVICE, "ChangeTenantType", role(Role::PlatformAdmin))
        .declare(SERVICE, "SuspendTenant", role(Role::PlatformAdmin))
        .declare(SERVICE, "ReactivateTenant", role(Role::PlatformAdmin))
        .declare(SERVICE, "MarkForDecommission", role(Role::Owner));
    p
}

#[cfg(test)]
mod tests {
    /// Every RPC of the service, as reflection lists them, declares a role.
    #[test]
    fn every_rpc_declares_its_role() {
        assert_eq!(super::policy().check_covers("tenantry.tenant.v1"), Ok(12));
    }
}
