//! AES-256-GCM sealing under the auth service's master key.
//!
//! Sealed form: a 12-byte random nonce, then the ciphertext and its tag. The purpose of the
//! secret is bound as associated data, so a sealed client secret cannot be replayed as a
//! signing key.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

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
    key: LessSafeKey,
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        // A 32-byte key is always valid for AES-256.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("32-byte AES key");
        Self {
            key: LessSafeKey::new(unbound),
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
        let nonce_bytes = random::bytes::<NONCE_LEN>();
        let mut out = nonce_bytes.to_vec();
        let mut body = plaintext.to_vec();
        // Sealing only fails for inputs over ~64 GiB.
        #[allow(clippy::expect_used)]
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(purpose.as_bytes()),
                &mut body,
            )
            .expect("AES-GCM seal");
        out.extend_from_slice(&body);
        out
    }

    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
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
