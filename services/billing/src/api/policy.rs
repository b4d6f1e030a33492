//! The role each RPC requires. An RPC missing here is denied to everyone.

use tenantry_kit::{Access, Role, RpcPolicy};

pub const SERVICE: &str = "tenantry.billing.v1.BillingService";

pub fn policy() -> RpcPolicy {
    let mut p = RpcPolicy::new();
    let role = Access::Role;
    p.declare(SERVICE, "DefinePlan", role(Role::PlatformAdmin))
        .declare(SERVICE, "ListPlans", role(Role::Viewer))
        .declare(SERVICE, "GetSubscription", role(Role::Viewer))
        .declare(SERVICE, "ChangePlan", role(Role::Owner))
        .declare(SERVICE, "CancelSubscription", role(Role::Owner))
        .declare(SERVICE, "SetBillingEmail", role(Role::Owner))
        .declare(SERVICE, "GetUsage", role(Role::Viewer))
        .declare(SERVICE, "UsageReport", role(Role::Viewer))
        .declare(SERVICE, "ListAlerts", role(Role::Viewer))
        .declare(SERVICE, "Checkout", role(Role::Owner))
        .declare(SERVICE, "ListInvoices", role(Role::Viewer))
        .declare(SERVICE, "GetInvoice", role(Role::Viewer))
        .declare(SERVICE, "VoidInvoice", role(Role::PlatformAdmin));
    p
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tenantry_kit::{Access, Role};

    /// Every RPC of the service, as the descriptor set lists them, declares a role.
    #[test]
    fn every_rpc_declares_its_role() {
        let set = prost_types::FileDescriptorSet::decode(tenantry_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let policy = super::policy();
        let mut checked = 0;
        for file in set
            .file
            .iter()
            .filter(|f| f.package() == "tenantry.billing.v1")
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
        assert_eq!(checked, 13);
        assert_eq!(
            policy.paths().count(),
            checked,
            "the policy names an RPC that does not exist"
        );
    }
}
