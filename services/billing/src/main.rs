//! `tenantry-billing`: the billing service on its own.

fn main() -> std::process::ExitCode {
    tenantry_kit::service::main::<tenantry_billing::BillingService>()
}
