//! The role each RPC requires. An RPC missing here is denied to everyone.
//!
//! Provisioning and decommissioning start and end what the tenant pays for: owners only.
//! Operating a deployment (scale, update, drain) is configuration: members.

use tenantry_kit::{Access, Role, RpcPolicy};

pub const SERVICE: &str = "tenantry.orchestration.v1.OrchestrationService";

pub fn policy() -> RpcPolicy {
    let mut p = RpcPolicy::new();
    let role = Access::Role;
    p.declare(SERVICE, "Provision", role(Role::Owner))
        .declare(SERVICE, "Scale", role(Role::Member))
        .declare(SERVICE, "SetAutoscaling", role(Role::Member))
        .declare(SERVICE, "Update", role(Role::Member))
        .declare(SERVICE, "Drain", role(Role::Member))
        .declare(SERVICE, "Resume", role(Role::Member))
        .declare(SERVICE, "Decommission", role(Role::Owner))
        .declare(SERVICE, "GetDeployment", role(Role::Viewer))
        .declare(SERVICE, "ListDeployments", role(Role::Viewer));
    p
}

#[cfg(test)]
mod tests {
    /// Every RPC of the service, as reflection lists them, declares a role.
    #[test]
    fn every_rpc_declares_its_role() {
        assert_eq!(
            super::policy().check_covers("tenantry.orchestration.v1"),
            Ok(9)
        );
    }
}
