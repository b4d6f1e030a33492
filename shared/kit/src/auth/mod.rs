//! Who is calling, and may they?
//!
//! Every gRPC request passes [`middleware::authenticate`]: the RPC's declared [`Access`] is
//! looked up in the service's [`RpcPolicy`] (an RPC that declares nothing is denied), the
//! bearer JWT is verified against the JWKS ([`Verifier`]), and a [`TenantContext`] is put into
//! the request for the handler. Machine clients send an API key (`tk_…`) instead of a JWT;
//! it is looked up in the [`ApiKeyDirectory`] every service keeps from the event log. Handlers take the tenant from the context, never from the body.

pub mod api_keys;
mod bearer;
mod context;
mod jwks;
pub mod middleware;
mod policy;
mod signing;
pub mod tenants;
mod verify;

pub use api_keys::ApiKeyDirectory;
pub use bearer::bearer;
pub use context::TenantContext;
pub use jwks::{JwksError, JwksSource};
pub use policy::{Access, Role, RpcPolicy};
pub use signing::{SigningKey, jwks};
pub use tenants::TenantDirectory;
pub use verify::{ACCESS_TOKEN_TYPE, AccessClaims, MAX_TOKEN_BYTES, Verifier, VerifierConfig};
