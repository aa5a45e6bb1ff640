//! The content-addressed cache under `target/lambda/`, and the temporary
//! paths that make every write atomic: work happens in a temporary sibling
//! that is renamed into place, so an interrupt never leaves a half entry.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};

use crate::digest::file_sha256;

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

/// Copies `source` to `dest` unless `dest` already holds the same bytes, so
/// that an unchanged artifact keeps its mtime. Returns whether it wrote.
pub fn publish_file(source: &Path, dest: &Path) -> Result<bool> {
    if dest.is_file()
        && fs::metadata(dest)?.len() == fs::metadata(source)?.len()
        && file_sha256(dest)?.hex == file_sha256(source)?.hex
    {
        return Ok(false);
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temp = temp_sibling(dest);
    let copied = fs::copy(source, &temp)
        .with_context(|| format!("copying {} to {}", source.display(), temp.display()));
    if let Err(err) =
        copied.and_then(|_| fs::rename(&temp, dest).with_context(|| format!("writing {}", dest.display())))
    {
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    Ok(true)
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

/// `compute(program)`, remembered in `target/lambda/tools/memo.json` by
/// `label` and the program's path, size and mtime: facts about a binary
/// (its version, where it really lives) without starting it on every run.
pub fn remembered(
    cache_dir: &Path,
    label: &str,
    program: &Path,
    compute: impl FnOnce(&Path) -> Option<String>,
) -> Option<String> {
    let resolved = which(program)?;
    let metadata = fs::metadata(&resolved).ok()?;
    let key = format!(
        "{label}:{}:{}:{:?}",
        resolved.display(),
        metadata.len(),
        metadata.modified().ok()
    );
    let memo_path = cache_dir.join("tools").join("memo.json");
    let mut memo: std::collections::BTreeMap<String, String> = fs::read(&memo_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some(value) = memo.get(&key) {
        return Some(value.clone());
    }
    let value = compute(&resolved)?;
    memo.insert(key, value.clone());
    if let Ok(bytes) = serde_json::to_vec_pretty(&memo) {
        let _ = write_atomic(&memo_path, &bytes);
    }
    Some(value)
}

/// `program` itself when it holds a `/`, else the first match on PATH.
pub fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Removes temporary leftovers (`.*.tmp-*`) of interrupted runs in `dir`.
pub fn sweep_temp(dir: &Path) {
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        let alive = name
            .rsplit_once(".tmp-")
            .and_then(|(_, rest)| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists());
        if name.starts_with('.') && name.contains(".tmp-") && !alive {
            let path = item.path();
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
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

    #[test]
    fn publish_keeps_an_identical_file() {
        let root = tempfile::tempdir().unwrap();
        let source = root.path().join("a");
        let dest = root.path().join("out/b");
        fs::write(&source, "same").unwrap();
        assert!(publish_file(&source, &dest).unwrap());
        assert!(!publish_file(&source, &dest).unwrap());
        fs::write(&source, "changed").unwrap();
        assert!(publish_file(&source, &dest).unwrap());
        assert_eq!(fs::read_to_string(&dest).unwrap(), "changed");
    }
}
