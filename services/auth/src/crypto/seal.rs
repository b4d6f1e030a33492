//! AES-256-GCM sealing under the auth service's master key (the kit's AEAD key).
//!
//! Sealed form: a 12-byte random nonce, then the ciphertext and its tag. The purpose of the
//! secret is bound as associated data, so a sealed client secret cannot be replayed as a
//! signing key.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tenantry_kit::seal::aead::Key;

use super::{random, secret_file};

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("master key: {0}")]
    Key(String),
    #[error("sealed secret does not open (wrong master key or corrupt)")]
    Open,
}

/// The master key.
pub struct Sealer {
    key: Key,
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key: Key::new(&key),
        }
    }

    /// Reads a base64 key file; with `create_if_missing` (`tenantry dev` only, never a
    /// service on its own), writes a new random key there first, readable by its owner only.
    pub fn from_file(path: &Path, create_if_missing: bool) -> Result<Self, SealError> {
        if create_if_missing {
            if !path.exists() {
                secret_file::create_private(
                    path,
                    STANDARD.encode(random::bytes::<32>()).as_bytes(),
                )
                .map_err(|e| SealError::Key(format!("write {}: {e}", path.display())))?;
                tracing::warn!(path = %path.display(), "generated a new master key (development only)");
            } else if secret_file::restrict(path)
                .map_err(|e| SealError::Key(format!("{}: {e}", path.display())))?
            {
                tracing::warn!(path = %path.display(), "master key was readable by others: now 0600");
            }
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| SealError::Key(format!("read {}: {e}", path.display())))?;
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| SealError::Key(format!("{}: not base64: {e}", path.display())))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError::Key(format!("{}: must hold 32 bytes", path.display())))?;
        Ok(Self::new(key))
    }

    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        self.key.seal(purpose.as_bytes(), plaintext)
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.key
            .open(purpose.as_bytes(), sealed)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_refuses_another_purpose() {
        let sealer = Sealer::new([7; 32]);
        let sealed = sealer.seal("oidc-client-secret", b"s3cret");
        assert_eq!(
            sealer.open("oidc-client-secret", &sealed).unwrap(),
            b"s3cret"
        );
        assert!(sealer.open("signing-key", &sealed).is_err());
        assert!(
            Sealer::new([8; 32])
                .open("oidc-client-secret", &sealed)
                .is_err()
        );
    }
}
