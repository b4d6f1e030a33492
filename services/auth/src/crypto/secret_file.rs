//! Files that hold secrets (the development master key and admin password): readable by their
//! owner only.
//!
//! A file is created with mode 0600 from the start (never written first and restricted
//! after), and `create_new` refuses to follow a symlink planted at the path. A file an older
//! version wrote with the default 0644 is restricted when it is next used.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to a new file at `path` that only its owner can read (creating the
/// directories to it, also owner-only). Fails if the file exists.
pub fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dirs(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Takes group and other permissions away from an existing secret file; says whether it had
/// any.
pub fn restrict(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(false)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn secret_files_are_private_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("secret-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("nested/admin.password");
        create_private(&path, b"s3cret").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(create_private(&path, b"other").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"s3cret");

        let old = dir.join("old.key");
        std::fs::write(&old, "k").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(restrict(&old).unwrap());
        assert_eq!(mode(&old), 0o600);
        assert!(!restrict(&old).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
