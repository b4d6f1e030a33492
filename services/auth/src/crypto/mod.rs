//! Secrets: random tokens, password hashing and sealing under the master key.
//!
//! - [`random`]: bearer secrets (refresh tokens, invitations, API keys, OIDC state) from the
//!   OS generator, and their digests.
//! - [`password`]: argon2id hashing and the password policy.
//! - [`seal`]: AES-256-GCM under the master key, for what must be read back (OIDC client
//!   secrets, signing keys) or must not be readable in the log (password hashes).
//! - [`secret_file`]: owner-only files for development secrets.

pub mod password;
pub mod random;
pub mod seal;
pub mod secret_file;
