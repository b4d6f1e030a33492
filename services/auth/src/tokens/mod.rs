//! Access tokens and the keys that sign them.
//!
//! - [`keys`]: Ed25519 signing keys in Postgres (sealed), rotation, and the JWKS document.
//! - [`issue`]: signing access tokens for a user or platform admin.

pub mod issue;
pub mod keys;

pub use issue::Issuer;
pub use keys::KeyStore;
