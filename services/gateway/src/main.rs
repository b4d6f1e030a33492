//! `tenantry-gateway`: the gateway on its own.

use mimalloc::MiMalloc;

// Fewer cycles per request than glibc's malloc under a proxy's churn (ADR 0004).
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() -> std::process::ExitCode {
    tenantry_kit::service::main::<tenantry_gateway::GatewayService>()
}
