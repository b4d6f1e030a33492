//! The role each RPC requires. An RPC missing here is denied to everyone.

use tenantry_kit::{Access, Role, RpcPolicy};

pub const SERVICE: &str = "tenantry.sync.v1.SyncService";

pub fn policy() -> RpcPolicy {
    let mut p = RpcPolicy::new();
    let role = Access::Role;
    p.declare(SERVICE, "CreateIntegration", role(Role::Member))
        .declare(SERVICE, "ListIntegrations", role(Role::Viewer))
        .declare(SERVICE, "GetIntegration", role(Role::Viewer))
        .declare(SERVICE, "ValidateCredentials", role(Role::Member))
        .declare(SERVICE, "SetIntegrationEnabled", role(Role::Member))
        .declare(SERVICE, "TriggerSync", role(Role::Member))
        .declare(SERVICE, "GetSyncStatus", role(Role::Viewer))
        .declare(SERVICE, "ListAlerts", role(Role::Viewer));
    p
}

#[cfg(test)]
mod tests {
    /// Every RPC of the service, as reflection lists them, declares a role.
    #[test]
    fn every_rpc_declares_its_role() {
        assert_eq!(super::policy().check_covers("tenantry.sync.v1"), Ok(8));
    }
}
