//! Atomic writes: work happens in a temporary sibling that is renamed into
//! place, so an interrupt never leaves a half-written file or directory
//! under a real name; the leftovers of interrupted runs are swept. Also the
//! one way to make a folder in the shared temporary folder: a fresh,
//! unguessable name that no other user can pre-create, list or write.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
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

impl TempDir {
    /// Renames the directory to `dest` unless something is there already
    /// (another process put the same thing into place first): then it is
    /// removed, and what is there stays.
    pub fn persist_unless_there(self, dest: &Path) -> Result<()> {
        match fs::rename(&self.0, dest) {
            Ok(()) => {
                std::mem::forget(self);
                Ok(())
            }
            Err(_) if dest.is_dir() => Ok(()),
            Err(err) => Err(err).with_context(|| format!("moving {} into place", dest.display())),
        }
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

/// Removes temporary leftovers (`.*.tmp-PID-N`) of interrupted runs in
/// `dir`. Called under the repository's lock; a run that is still going
/// owns its own (`serve` keeps its environments' layouts beyond its build,
/// without the lock), so only those of ended processes go.
pub fn sweep_temp(dir: &Path) {
    let Ok(items) = fs::read_dir(dir) else { return };
    for item in items.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        let Some((_, owner)) = name.rsplit_once(".tmp-") else {
            continue;
        };
        let running = owner
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if name.starts_with('.') && !running {
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
    if fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir()) {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
        for entry in fs::read_dir(path).into_iter().flatten().flatten() {
            make_writable(&entry.path());
        }
    }
}

/// A new folder `<prefix><pid>-<random>` in the system's temporary folder
/// (`TMPDIR`, else `/tmp`), with mode `mode` (0700, or 0711 for a parent
/// that another user must cross but not list). Its 128-bit random name
/// cannot be guessed, and it is created, never reused: a folder or symlink
/// that someone else put there first makes this fail instead.
pub fn private_temp_dir(prefix: &str, mode: u32) -> Result<PathBuf> {
    let prefix = format!("{prefix}{}-", std::process::id());
    private_dir_in(&std::env::temp_dir(), &prefix, mode)
}

/// A new folder `<prefix><random>` in `parent` with mode `mode`, as
/// [`private_temp_dir`] makes them.
pub fn private_dir_in(parent: &Path, prefix: &str, mode: u32) -> Result<PathBuf> {
    let dir = parent.join(format!("{prefix}{}", random_hex()?));
    fs::DirBuilder::new()
        .mode(mode)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // The umask may have taken bits away; ours, so no one else can race this.
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    Ok(dir)
}

/// 128 random bits from the kernel, in hex: a name nobody can guess.
pub fn random_hex() -> Result<String> {
    let mut random = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut random))
        .context("reading /dev/urandom for a private name")?;
    Ok(random.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Removes the folders [`private_temp_dir`] made with `prefix` for runs
/// that have ended (their process is gone), when they are this user's.
pub fn sweep_private_temp_dirs(prefix: &str) {
    let Ok(items) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let uid = fs::metadata("/proc/self").map(|metadata| metadata.uid()).ok();
    for item in items.flatten() {
        let name = item.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(prefix))
            .and_then(|rest| rest.split_once('-'))
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        let ours = fs::symlink_metadata(item.path())
            .is_ok_and(|metadata| metadata.is_dir() && Some(metadata.uid()) == uid);
        let ended = pid
            .parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if ours && ended {
            let _ = fs::remove_dir_all(item.path());
        }
    }
}

/// A copy of the tree `from` at `to` made of hard links where the file
/// system allows them, else of copies: cheap, and the same bytes as long as
/// nobody writes into a file in place (the tool unlinks and writes).
pub fn link_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for item in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let item = item?;
        let target = to.join(item.file_name());
        let file_type = item.file_type()?;
        if file_type.is_dir() {
            link_tree(&item.path(), &target)?;
        } else {
            link_or_copy(&item.path(), &target)?;
        }
    }
    Ok(())
}

/// `to` as a hard link to `from` where the file system allows one, else a
/// copy: no new file (inode) to allocate, and the same bytes as long as
/// nobody writes into either in place (the tool unlinks and writes).
pub fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
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
    fn sweep_temp_spares_the_leftovers_of_running_processes() {
        let root = tempfile::tempdir().unwrap();
        let mut running = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let mut ended = std::process::Command::new("true").spawn().unwrap();
        ended.wait().unwrap();
        let (alive, gone) = (running.id(), ended.id());
        for name in [
            format!(".layout.tmp-{alive}-0"),
            format!(".layout.tmp-{gone}-0"),
            format!(".own.tmp-{}-3", std::process::id()),
        ] {
            fs::create_dir(root.path().join(name)).unwrap();
        }
        fs::write(root.path().join(format!(".file.tmp-{gone}-1")), "x").unwrap();
        sweep_temp(root.path());
        running.kill().unwrap();
        running.wait().unwrap();
        let mut left: Vec<String> = fs::read_dir(root.path())
            .unwrap()
            .map(|item| item.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut kept = vec![
            format!(".layout.tmp-{alive}-0"),
            format!(".own.tmp-{}-3", std::process::id()),
        ];
        kept.sort();
        assert_eq!(left, kept);
    }

    #[test]
    fn private_temp_dirs_are_fresh_unguessable_and_private() {
        let one = private_temp_dir("xtask-atomic-test-", 0o700).unwrap();
        let two = private_temp_dir("xtask-atomic-test-", 0o711).unwrap();
        assert_ne!(one, two);
        assert_eq!(one.parent(), Some(std::env::temp_dir().as_path()));
        let name = one.file_name().unwrap().to_str().unwrap();
        let random = name.rsplit_once('-').unwrap().1;
        assert_eq!(random.len(), 32, "{name}");
        assert_eq!(fs::metadata(&one).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(&two).unwrap().mode() & 0o7777, 0o711);
        // A folder of a run that is still going (this one) is not swept.
        sweep_private_temp_dirs("xtask-atomic-test-");
        assert!(one.is_dir() && two.is_dir());
        fs::remove_dir(&one).unwrap();
        fs::remove_dir(&two).unwrap();

        // One of a run that has ended is.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let left = std::env::temp_dir().join(format!("xtask-atomic-test-{ended}-0123"));
        fs::create_dir(&left).unwrap();
        sweep_private_temp_dirs("xtask-atomic-test-");
        assert!(!left.exists());
    }
}
