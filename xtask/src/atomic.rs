//! Atomic writes: work happens in a temporary sibling that is renamed into
//! place, so an interrupt never leaves a half-written file or directory
//! under a real name; the leftovers of interrupted runs are swept.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

/// A fresh name beside `path`: `<name>.tmp-<pid>-<n>`.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// A directory removed when dropped (also on error paths and panics).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory beside `path`.
    pub fn beside(path: &Path) -> Result<TempDir> {
        let dir = temp_sibling(path);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Renames the directory to `dest`, replacing what was there.
    pub fn persist(self, dest: &Path) -> Result<()> {
        if dest.exists() {
            let old = temp_sibling(dest);
            fs::rename(dest, &old).with_context(|| format!("moving aside {}", dest.display()))?;
            let _ = fs::remove_dir_all(&old);
        }
        fs::rename(&self.0, dest).with_context(|| format!("moving {} into place", dest.display()))?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes `bytes` to `path` through a temporary sibling.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temp = temp_sibling(path);
    let result = fs::write(&temp, bytes)
        .with_context(|| format!("writing {}", temp.display()))
        .and_then(|()| fs::rename(&temp, path).with_context(|| format!("writing {}", path.display())));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes temporary leftovers (`.*.tmp-*`) of interrupted runs in `dir`.
/// Called under the repository's lock, so no other run owns them.
pub fn sweep_temp(dir: &Path) {
    let Ok(items) = fs::read_dir(dir) else { return };
    let own = format!(".tmp-{}-", std::process::id());
    for item in items.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") && !name.contains(&own) {
            let path = item.path();
            if fs::remove_dir_all(&path)
                .or_else(|_| fs::remove_file(&path))
                .is_err()
            {
                // A function's read-only layout: its folders become writable first.
                make_writable(&path);
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

/// Gives the owner write access to every folder under `path` (symlinks
/// are not followed), so that it can be removed.
pub fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            make_writable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_is_removed_unless_persisted() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("entry");
        {
            let temp = TempDir::beside(&dest).unwrap();
            fs::write(temp.path().join("half"), "x").unwrap();
        }
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        let temp = TempDir::beside(&dest).unwrap();
        fs::write(temp.path().join("whole"), "x").unwrap();
        temp.persist(&dest).unwrap();
        assert!(dest.join("whole").is_file());
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
