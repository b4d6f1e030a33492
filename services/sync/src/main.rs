//! `tenantry-sync`: the sync service on its own.

fn main() -> std::process::ExitCode {
    tenantry_kit::service::main::<tenantry_sync::SyncService>()
}
