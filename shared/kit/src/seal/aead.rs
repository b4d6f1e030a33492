//! AES-256-GCM with a random 96-bit nonce: `nonce ‖ ciphertext ‖ tag`.
//!
//! Random nonces are safe for far more messages than one key ever seals here (a data key seals
//! a tenant's credentials, a master key wraps data keys): the birthday bound for 96-bit nonces
//! is about 2^32 messages per key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::SealError;

/// `N` random bytes from the operating system.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator failing is not something to continue from.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random generator failed");
    out
}

/// An AES-256 key.
pub struct Key(LessSafeKey);

impl Key {
    pub fn new(bytes: &[u8; 32]) -> Self {
        // A 32-byte key is always valid for AES-256.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES key");
        Self(LessSafeKey::new(unbound))
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = random::<NONCE_LEN>();
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        // Sealing only fails for inputs over ~64 GiB.
        #[allow(clippy::expect_used)]
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .expect("AES-GCM seal");
        out.extend_from_slice(&body);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

/// Associated data: a purpose label and the values it binds, each length-prefixed so no two
/// different lists give the same bytes.
pub fn associated(purpose: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_the_same_key_and_associated_data() {
        let key = Key::new(&[7; 32]);
        let sealed = key.seal(b"ad", b"s3cret");
        assert_eq!(key.open(b"ad", &sealed).unwrap(), b"s3cret");
        assert!(key.open(b"other", &sealed).is_err());
        assert!(Key::new(&[8; 32]).open(b"ad", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(key.open(b"ad", &flipped).is_err());
        assert!(key.open(b"ad", &sealed[..5]).is_err());
    }

    #[test]
    fn associated_data_cannot_be_shifted_between_parts() {
        assert_ne!(
            associated("p", &[b"ab", b"c"]),
            associated("p", &[b"a", b"bc"])
        );
    }
}
