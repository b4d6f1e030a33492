//! The master keys: the current one wraps data keys; previous ones (during a rotation) only
//! unwrap what they wrapped until it is re-wrapped.
//!
//! A master key is 32 random bytes, base64 in a file readable by its owner only. Its id (the
//! first 8 bytes of a SHA-256 of the key, in hex) is stored beside each wrapped data key, so
//! the key that opens it is found without trying them all and a rotation knows what is left.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::SealError;
use super::aead::{Key, associated, random};

/// The label of a wrapped data key's associated data, in every service that seals (named
/// for sync, which sealed first; kept so the keys it stored still open). Each service keeps
/// its data keys in its own schema under its own master key.
const DATA_KEY: &str = "tenantry.sync.data_key.v1";

struct MasterKey {
    id: String,
    key: Key,
}

impl MasterKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let id = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            id,
            key: Key::new(bytes),
        }
    }
}

/// The current master key and any previous ones.
pub struct MasterKeys {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

/// A data key as stored: sealed by the master key `master_id`.
#[derive(Debug, Clone)]
pub struct Wrapped {
    pub master_id: String,
    pub sealed: Vec<u8>,
}

impl MasterKeys {
    pub fn new(current: [u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            current: MasterKey::new(&current),
            previous: previous.iter().map(MasterKey::new).collect(),
        }
    }

    /// Reads the current key file and any previous ones.
    pub fn from_files(current: &Path, previous: &[PathBuf]) -> Result<Self, SealError> {
        let previous = previous
            .iter()
            .map(|p| read_key(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(read_key(current)?, &previous))
    }

    /// The id of the key that wraps new data keys.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// Wraps `tenant`'s data key `version` under the current master key.
    pub fn wrap(&self, tenant: &str, version: u32, data_key: &[u8; 32]) -> Wrapped {
        Wrapped {
            master_id: self.current.id.clone(),
            sealed: self
                .current
                .key
                .seal(&aad(tenant, version), data_key.as_slice()),
        }
    }

    /// The data key `version` of `tenant`, unwrapped by the master key that wrapped it.
    pub fn unwrap(
        &self,
        tenant: &str,
        version: u32,
        wrapped: &Wrapped,
    ) -> Result<[u8; 32], SealError> {
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|m| m.id == wrapped.master_id)
            .ok_or_else(|| {
                SealError::Key(format!(
                    "a data key is wrapped by master key {}, which is not configured",
                    wrapped.master_id
                ))
            })?;
        let plain = master.key.open(&aad(tenant, version), &wrapped.sealed)?;
        plain.try_into().map_err(|_| SealError::Open)
    }
}

fn aad(tenant: &str, version: u32) -> Vec<u8> {
    associated(DATA_KEY, &[tenant.as_bytes(), &version.to_be_bytes()])
}

fn read_key(path: &Path) -> Result<[u8; 32], SealError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SealError::Key(format!("read {}: {e}", path.display())))?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| SealError::Key(format!("{}: not base64: {e}", path.display())))?;
    bytes
        .try_into()
        .map_err(|_| SealError::Key(format!("{}: must hold 32 bytes", path.display())))
}

/// The development master key of `service` for `tenantry dev`:
/// `.tenantry/dev/<service>-master.key`, created (owner-only) if missing. Only `tenantry dev`
/// calls this; a service started on its own requires its master key file, so no replica ever
/// seals under a key it made up.
pub fn dev_master_key(service: &str) -> Result<PathBuf, SealError> {
    let path = PathBuf::from(format!(".tenantry/dev/{service}-master.key"));
    create_if_missing(&path)?;
    Ok(path)
}

/// Writes a new random master key to `path` if there is none (`tenantry dev` only: a service
/// started on its own requires its key), owner-only from the start; `create_new` refuses to
/// follow a symlink planted there.
pub fn create_if_missing(path: &Path) -> Result<(), SealError> {
    if path.exists() {
        return Ok(());
    }
    let fail = |e: std::io::Error| SealError::Key(format!("write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(STANDARD.encode(random::<32>()).as_bytes())
        .map_err(fail)?;
    file.sync_all().map_err(fail)?;
    tracing::warn!(path = %path.display(), "generated a new master key (development only)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_data_key_opens_only_for_its_tenant_and_version() {
        let keys = MasterKeys::new([1; 32], &[]);
        let wrapped = keys.wrap("t1", 1, &[9; 32]);
        assert_eq!(keys.unwrap("t1", 1, &wrapped).unwrap(), [9; 32]);
        assert!(matches!(
            keys.unwrap("t2", 1, &wrapped),
            Err(SealError::Open)
        ));
        assert!(matches!(
            keys.unwrap("t1", 2, &wrapped),
            Err(SealError::Open)
        ));
    }

    #[test]
    fn a_previous_master_key_still_unwraps_what_it_wrapped() {
        let old = MasterKeys::new([1; 32], &[]);
        let wrapped = old.wrap("t1", 1, &[9; 32]);
        let rotated = MasterKeys::new([2; 32], &[[1; 32]]);
        assert_ne!(rotated.current_id(), wrapped.master_id);
        assert_eq!(rotated.unwrap("t1", 1, &wrapped).unwrap(), [9; 32]);
        // Without the old key listed, the error says which key is missing.
        let forgot = MasterKeys::new([2; 32], &[]);
        assert!(matches!(
            forgot.unwrap("t1", 1, &wrapped),
            Err(SealError::Key(_))
        ));
    }

    #[test]
    fn key_files_are_made_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("sync-key-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("dev/sync-master.key");
        create_if_missing(&path).unwrap();
        let first = std::fs::read(&path).unwrap();
        create_if_missing(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first, "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let keys = MasterKeys::from_files(&path, &[]).unwrap();
        assert_eq!(keys.current_id().len(), 16);
        std::fs::write(&path, "c2hvcnQ=").unwrap();
        assert!(MasterKeys::from_files(&path, &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
