//! `tenantry-auth`: the auth service on its own.

fn main() -> std::process::ExitCode {
    tenantry_kit::service::main::<tenantry_auth::AuthService>()
}
