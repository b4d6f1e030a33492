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
    /// Every RPC of the service, as reflection lists them, declares a role.
    #[test]
    fn every_rpc_declares_its_role() {
        assert_eq!(super::policy().check_covers("tenantry.billing.v1"), Ok(13));
    }
}
