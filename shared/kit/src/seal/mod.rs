//! Sealed secrets: envelope encryption with AES-256-GCM, for every service that keeps a
//! tenant's secrets (sync's credentials, orchestration's secret environment variables).
//!
//! Each tenant has a data key (random, 256 bits, versioned) per service that seals its
//! secrets; the data key is stored only wrapped (sealed) by the service's master key, in the
//! service's `data_keys` table. What a secret is bound to travels as associated data, so a
//! sealed secret copied onto another tenant's or another owner's record, or presented under
//! another key version, does not open:
//!
//! - a secret: `purpose | tenant | binding… | key version` (sync's credentials:
//!   `tenantry.sync.credential.v1 | tenant | integration | key version`);
//! - a wrapped data key: `tenantry.sync.data_key.v1 | tenant | key version`.
//!
//! Rotation: [`Keystore::rotate`] gives a tenant a new data key version (new credentials are
//! sealed under it, older ones still open under theirs); a new master key re-wraps every data
//! key ([`Keystore::rewrap`]) while the old master key is still listed as a previous one.
//! [`Keystore::shred`] deletes a tenant's data keys: its credentials, wherever they were
//! copied (the event log is immutable), no longer open.
//!
//! # Layout
//! - [`aead`]: AES-256-GCM with a random nonce, the only place that touches ring's AEAD.
//! - [`master`]: the master keys (current and previous), read from files.
//! - [`keystore`]: the tenants' data keys in Postgres, and sealing and opening with them.

pub mod aead;
pub mod keystore;
pub mod master;

pub use keystore::Keystore;
pub use master::MasterKeys;

/// A secret sealed under a tenant's data key: the key's version and
/// `nonce ‖ ciphertext ‖ tag`. Carried as is in events and the read model.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_version: u32,
    pub ciphertext: Vec<u8>,
}

// Never the bytes, even sealed: a Debug print has no use for them.
impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key_version", &self.key_version)
            .field("len", &self.ciphertext.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("master key: {0}")]
    Key(String),
    /// Wrong key, tampered bytes or associated data: AES-GCM says no more than that.
    #[error("sealed data does not open (wrong key, or tampered)")]
    Open,
    /// The tenant's data key of that version does not exist (never made, or shredded).
    #[error("no data key for this tenant (version {0})")]
    NoKey(u32),
    /// The tenant's data keys were shredded: nothing is sealed for it any more.
    #[error("the tenant's data keys were shredded")]
    Shredded,
    #[error("data key store: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<&tenantry_proto::events::v1::SealedSecret> for Sealed {
    fn from(s: &tenantry_proto::events::v1::SealedSecret) -> Self {
        Self {
            key_version: s.key_version,
            ciphertext: s.ciphertext.clone(),
        }
    }
}

impl From<Sealed> for tenantry_proto::events::v1::SealedSecret {
    fn from(s: Sealed) -> Self {
        Self {
            key_version: s.key_version,
            ciphertext: s.ciphertext,
        }
    }
}
