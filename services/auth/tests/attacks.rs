//! Attacks on the auth service, each performed against the real service (NATS, Postgres, the
//! npm `oidc-provider` where a provider is needed) and named after what it tries. Each one
//! succeeded before its fix (issue 17); the module says which item it covers.

mod common;

#[path = "attacks/bootstrap.rs"]
mod bootstrap;
#[path = "attacks/dev_secrets.rs"]
mod dev_secrets;
#[path = "attacks/federation.rs"]
mod federation;
#[path = "attacks/platform_keys.rs"]
mod platform_keys;
#[path = "attacks/secrets.rs"]
mod secrets;
#[path = "attacks/sessions.rs"]
mod sessions;
#[path = "attacks/signing_keys.rs"]
mod signing_keys;
#[path = "attacks/throttling.rs"]
mod throttling;
