//! Ed25519 signing keys and the access tokens they sign.
//!
//! The auth service owns token issuance; this is the shared mechanism it (and `tenantry dev`,
//! and tests) use: generate a key, publish its JWK, sign claims as an `at+jwt`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey as DalekKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use uuid::Uuid;

use super::{ACCESS_TOKEN_TYPE, AccessClaims};

/// PKCS#8 v1 header of an Ed25519 private key (RFC 8410); the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    seed: [u8; 32],
}

impl SigningKey {
    /// A new random key (the seed comes from the OS generator through UUID v4).
    pub fn generate(kid: impl Into<String>) -> Self {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        Self {
            kid: kid.into(),
            seed,
        }
    }

    pub fn from_seed(kid: impl Into<String>, seed: [u8; 32]) -> Self {
        Self {
            kid: kid.into(),
            seed,
        }
    }

    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The public half as a JWK (`OKP`, `Ed25519`).
    pub fn public_jwk(&self) -> serde_json::Value {
        let public = DalekKey::from_bytes(&self.seed).verifying_key();
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(public.as_bytes()),
        })
    }

    pub fn encoding_key(&self) -> EncodingKey {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        EncodingKey::from_ed_der(&der)
    }

    /// Signs `claims` as an access token (`typ` `at+jwt`, this key's `kid`).
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key())
    }
}

/// A JWKS document holding the public keys of `keys`.
pub fn jwks(keys: &[&SigningKey]) -> serde_json::Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}
