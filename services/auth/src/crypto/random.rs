//! Random secrets from the operating system's generator, base64url without padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use tenantry_kit::auth::api_keys::digest;
/// `N` random bytes from the operating system.
pub use tenantry_kit::seal::aead::random as bytes;

/// A 256-bit secret as 43 base64url characters.
pub fn secret() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<32>())
}

/// A short random id for display prefixes: 8 characters of `[a-z0-9]`.
pub fn short_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    bytes::<8>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
