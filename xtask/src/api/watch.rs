//! Reload on save: the files a build reads are looked at every
//! [`POLL`]; once a change has settled for [`SETTLE`] the caller rebuilds.
//! Polling the metadata of a small tree costs less than a millisecond and
//! needs no platform's notification API; it sees a file replaced by an
//! editor's rename as well as one written in place.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(40);

/// How long a change must stand still before a rebuild: an editor that
/// writes a file in two steps is seen once.
pub const SETTLE: Duration = Duration::from_millis(40);

/// What identifies one version of a file: its inode, size, and change
/// times to the nanosecond.
type Stamp = (u64, u64, i64, i64, i64, i64);

/// Every file under `roots` (files or folders), with its stamp. Caches,
/// hidden files and editors' swap files are no input of a build.
pub fn snapshot(roots: &[PathBuf]) -> BTreeMap<PathBuf, Stamp> {
    let mut files = BTreeMap::new();
    for root in roots {
        walk(root, &mut files);
    }
    files
}

fn walk(path: &Path, files: &mut BTreeMap<PathBuf, Stamp>) {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    if name == "__pycache__" || name.ends_with('~') || name.ends_with(".swp") {
        return;
    }
    let Ok(metadata) = fs::metadata(path) else {
        return;
    };
    if metadata.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                walk(&entry.path(), files);
            }
        }
        return;
    }
    let stamp = (
        metadata.ino(),
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec(),
    );
    files.insert(path.to_path_buf(), stamp);
}

/// The files that differ between two snapshots (added, removed or changed).
pub fn changed(before: &BTreeMap<PathBuf, Stamp>, after: &BTreeMap<PathBuf, Stamp>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = after
        .iter()
        .filter(|(path, stamp)| before.get(*path) != Some(stamp))
        .map(|(path, _)| path.clone())
        .collect();
    paths.extend(before.keys().filter(|path| !after.contains_key(*path)).cloned());
    paths.sort();
    paths
}

/// Waits for a change under the roots `roots()` names, and once it has
/// settled calls `rebuild` with the changed files; `rebuild` returns the
/// roots to watch from then on (a build may add or remove folders). Never
/// returns: `serve` ends on an interrupt.
pub fn watch(mut roots: Vec<PathBuf>, mut rebuild: impl FnMut(&[PathBuf]) -> Vec<PathBuf>) -> ! {
    let mut seen = snapshot(&roots);
    loop {
        thread::sleep(POLL);
        let now = snapshot(&roots);
        if changed(&seen, &now).is_empty() {
            continue;
        }
        let mut settled = now;
        loop {
            thread::sleep(SETTLE);
            let again = snapshot(&roots);
            if changed(&settled, &again).is_empty() {
                break;
            }
            settled = again;
        }
        let paths = changed(&seen, &settled);
        let new_roots = rebuild(&paths);
        // A change made during the rebuild differs from `settled`: the
        // next look sees it. New roots are taken as they are now.
        seen = if new_roots == roots {
            settled
        } else {
            snapshot(&new_roots)
        };
        roots = new_roots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_again_is_a_change_and_a_cache_is_not() {
        let dir = std::env::temp_dir().join(format!("watch-test-{}", std::process::id()));
        fs::create_dir_all(dir.join("__pycache__")).unwrap();
        fs::write(dir.join("handler.py"), "x = 1\n").unwrap();
        let roots = vec![dir.clone()];
        let before = snapshot(&roots);
        fs::write(dir.join("__pycache__/handler.cpython-311.pyc"), "junk").unwrap();
        assert!(changed(&before, &snapshot(&roots)).is_empty());
        // Same size, same second: the nanoseconds or the inode tell.
        std::thread::sleep(Duration::from_millis(5));
        fs::write(dir.join("handler.py"), "x = 2\n").unwrap();
        assert_eq!(changed(&before, &snapshot(&roots)), vec![dir.join("handler.py")]);
        fs::remove_file(dir.join("handler.py")).unwrap();
        assert_eq!(changed(&before, &snapshot(&roots)), vec![dir.join("handler.py")]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
