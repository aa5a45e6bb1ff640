//! The cache every repository of the user shares, beside the installer's
//! own: finished distributions (`finished/<key>/`), the outcomes of layer
//! proofs (`proven/<key>/`) and dependency layers by their node's key
//! (`layers/<key>/`), each a store entry written whole and
//! verified before use like every entry of the store; and the runtime's
//! own packages for the smoke tests (`runtime/`), installed once.
//! Where it is (`XTASK_CACHE_DIR`, else `$XDG_CACHE_HOME/xtask-lambda`,
//! else `~/.cache/xtask-lambda`), how large it may grow
//! (`XTASK_CACHE_MAX`, default 2 GiB), and pruning: the entries used
//! longest ago go first.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::Store;
use crate::ground::error::UsageError;

/// Names the cache's folder.
pub const DIR_VARIABLE: &str = "XTASK_CACHE_DIR";
/// The most the cache may hold, as a size (`2 GiB`, `500 MB`, bytes):
/// read by the configuration (`config::user_cache_bound`).
pub const MAX_VARIABLE: &str = "XTASK_CACHE_MAX";
/// The bound when [`MAX_VARIABLE`] is not set.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// The store kind of a finished distribution.
pub const FINISHED: &str = "finished";
/// The store kind of a proven layer's outcome (no files: the modules
/// that did not import).
pub const PROVEN: &str = "proven";
/// The store kind of a dependency layer's entry (its ZIP and data), by
/// its node's key, which names no checkout: another clone finds it.
pub const LAYERS: &str = "layers";
/// Where the runtime's own packages (boto3, the runtime interface client)
/// are installed once for the smoke tests of every repository.
pub const RUNTIME: &str = "runtime";
/// The folder's name under `$XDG_CACHE_HOME` or `~/.cache`.
const NAME: &str = "xtask-lambda";

pub struct UserCache {
    pub dir: PathBuf,
}

/// What a prune did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub removed: usize,
    pub freed: u64,
    pub kept: usize,
    pub kept_bytes: u64,
}

impl UserCache {
    /// Where the cache is: `None` when neither the variable, nor
    /// `XDG_CACHE_HOME`, nor `HOME` says (nothing is cached then). A
    /// relative `XTASK_CACHE_DIR` is refused (exit 2): it would be another
    /// cache in every folder a command runs in.
    pub fn locate() -> Result<Option<UserCache>> {
        let absolute = |variable: &str| -> Option<PathBuf> {
            std::env::var_os(variable)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = absolute(DIR_VARIABLE) {
            if !dir.is_absolute() {
                return Err(UsageError::new(format!(
                    "{DIR_VARIABLE}={} is not an absolute path (name the cache's folder from /)",
                    dir.display()
                ))
                .into());
            }
            return Ok(Some(UserCache { dir }));
        }
        let base = absolute("XDG_CACHE_HOME")
            .filter(|dir| dir.is_absolute())
            .or_else(|| absolute("HOME").map(|home| home.join(".cache")));
        Ok(base.map(|base| UserCache { dir: base.join(NAME) }))
    }

    pub fn store(&self) -> Store {
        Store::at(self.dir.clone())
    }

    /// Marks an entry as used now, so pruning keeps it longest.
    pub fn touch(entry: &Path) {
        let meta = entry.join(super::META);
        if let Ok(file) = fs::File::options().append(true).open(meta) {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// Removes the entries used longest ago until what is left holds at
    /// most `max` bytes, and what interrupted writes left behind.
    pub fn prune(&self, max: u64) -> Result<Pruned> {
        // What interrupted installs of the runtime's packages left behind.
        crate::ground::atomic::sweep_temp(&self.dir.join(RUNTIME));
        let mut entries = Vec::new();
        for kind in [FINISHED, PROVEN, LAYERS] {
            let kind = self.store().kind_dir(kind);
            let items = match fs::read_dir(&kind) {
                Ok(items) => items,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("listing {}", kind.display())),
            };
            crate::ground::atomic::sweep_temp(&kind);
            for item in items.flatten() {
                let dir = item.path();
                if !item.file_type().is_ok_and(|kind| kind.is_dir()) || is_temp(&dir) {
                    continue;
                }
                let used = fs::metadata(dir.join(super::META))
                    .and_then(|meta| meta.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                entries.push((used, tree_bytes(&dir), dir));
            }
        }
        // Oldest first; the name settles a tie.
        entries.sort();
        let mut total: u64 = entries.iter().map(|(_, bytes, _)| bytes).sum();
        let mut pruned = Pruned::default();
        for (_, bytes, dir) in &entries {
            if total <= max {
                break;
            }
            let aside = crate::ground::atomic::temp_sibling(dir);
            if fs::rename(dir, &aside).is_err() {
                continue;
            }
            fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))?;
            total -= bytes;
            pruned.removed += 1;
            pruned.freed += bytes;
        }
        pruned.kept = entries.len() - pruned.removed;
        pruned.kept_bytes = total;
        Ok(pruned)
    }
}

fn is_temp(dir: &Path) -> bool {
    dir.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
}

/// The bytes of every file below `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for item in fs::read_dir(&next).into_iter().flatten().flatten() {
            match item.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(item.path()),
                Ok(kind) if kind.is_file() => total += item.metadata().map_or(0, |meta| meta.len()),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cache: &UserCache, key: &str, bytes: usize) -> PathBuf {
        let entry = cache
            .store()
            .put_tree(FINISHED, key, |dir| {
                fs::create_dir_all(dir.join("python/pkg"))?;
                fs::write(dir.join("python/pkg/data.bin"), vec![7u8; bytes])?;
                Ok(serde_json::json!({}))
            })
            .unwrap();
        entry.dir
    }

    #[test]
    fn pruning_removes_the_entries_used_longest_ago_down_to_the_bound() {
        let root = tempfile::tempdir().unwrap();
        let cache = UserCache {
            dir: root.path().to_path_buf(),
        };
        let old = entry(&cache, "old", 4000);
        let middle = entry(&cache, "middle", 4000);
        let new = entry(&cache, "new", 4000);
        let at = |seconds: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        for (dir, seconds) in [(&old, 1_000), (&middle, 2_000), (&new, 3_000)] {
            let file = fs::File::options()
                .append(true)
                .open(dir.join(super::super::META))
                .unwrap();
            file.set_modified(at(seconds)).unwrap();
        }
        // The oldest is used again: it is now the newest.
        UserCache::touch(&old);
        let pruned = cache.prune(9_000).unwrap();
        assert_eq!(pruned.removed, 1, "{pruned:?}");
        assert!(!middle.exists(), "the entry used longest ago goes first");
        assert!(old.exists() && new.exists());
        assert!(pruned.kept_bytes <= 9_000, "{pruned:?}");
        assert_eq!(cache.prune(0).unwrap().kept, 0);
        assert_eq!(cache.prune(0).unwrap(), Pruned::default());
    }
}
