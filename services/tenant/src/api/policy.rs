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
    use prost::Message;
    use tenantry_kit::{Access, Role};

    /// Every RPC of the service, as the descriptor set (what reflection serves) lists them,
    /// declares a role: none is public, none falls through to the default deny by omission.
    #[test]
    fn every_rpc_declares_its_role() {
        let set = prost_types::FileDescriptorSet::decode(tenantry_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let policy = super::policy();
        let mut checked = 0;
        for file in set
            .file
            .iter()
            .filter(|f| f.package() == "tenantry.tenant.v1")
        {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                for method in &service.method {
                    let path = format!("/{full}/{}", method.name());
                    match policy.lookup(&path) {
                        Some(Access::Role(role)) => assert!(Role::ALL.contains(&role)),
                        other => panic!("{path} declares {other:?}"),
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 12);
        assert_eq!(
            policy.paths().count(),
            checked,
            "the policy names an RPC that does not exist"
        );
    }
}
