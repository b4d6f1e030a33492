//! `tenantry-orchestration`: the orchestration service on its own.

fn main() -> std::process::ExitCode {
    tenantry_kit::service::main::<tenantry_orchestration::OrchestrationService>()
}
