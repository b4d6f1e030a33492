//! `tenantry-tenant`: the tenant service on its own.

fn main() -> std::process::ExitCode {
    tenantry_kit::service::main::<tenantry_tenant::TenantService>()
}
