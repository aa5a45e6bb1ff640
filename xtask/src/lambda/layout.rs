//! A function laid out as Lambda lays it out: its ZIP extracted at a
//! `/var/task`, its layers in order at an `/opt`, read-only and with the
//! permissions Lambda's unprivileged sandbox user has on each file.
//!
//! The function's own code is extracted afresh for every run, into a
//! folder of the run's own. Its `/opt` (the layers merged in order, which
//! a handler edit does not change) is laid out once and kept under
//! `laid-out/<key>/` of the cache every repository of the user shares,
//! where the sandbox user reaches it (a fresh clone on a used machine lays
//! out nothing again), else of `target/lambda`: the key names what it is
//! made of (the SHA-256 of each layer's bytes as they are read now, so a
//! file changed in place is a new key, and one changed while it is laid out
//! fails the run), and a kept tree is used only while its `listing` (every
//! entry's kind, mode, size, mtime, ctime and inode) still matches the
//! tree, like a store entry's stamps; a tree that does not is laid out
//! again. A run holds a shared lock on the listing while it uses the tree:
//! only trees nobody holds are pruned, beyond the newest few.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::runtime_env::FunctionPlan;
use crate::config::Config;
use crate::contain;
use crate::contain::reaper::{self, Owned, Watched};
use crate::facts;
use crate::ground::atomic::{make_writable, temp_sibling, write_atomic, TempDir};
use crate::ground::digest::{file_sha256, KeyHasher};
use crate::store::user_cache::UserCache;
use crate::store::{archive, oci};

/// Under the cache folder: the kept `/opt` trees.
pub const LAID_OUT_DIR: &str = "laid-out";
const LISTING: &str = "listing";
const OPT: &str = "opt";
/// Changes when what a tree holds, how it is keyed or listed changes.
const FORMAT: &str = "2";
/// Trees kept besides the ones in use: a few layer sets switched between.
const KEEP: usize = 8;

/// A function laid out as Lambda lays it out; its own folder is removed
/// when dropped.
pub struct Layout {
    work: TempDir,
    /// Removed on SIGINT/SIGTERM too.
    _watched: Watched,
    pub task: PathBuf,
    pub opt: PathBuf,
    /// What was left out (external layers without a local copy).
    pub notes: Vec<String>,
    /// The shared lock on the kept `/opt` tree's listing: not pruned while held.
    _in_use: Option<File>,
}

/// One ZIP or image layer of the `/opt` tree.
struct Part {
    path: PathBuf,
    image_layer: bool,
    /// For messages: `layer \`core\``.
    what: String,
}

/// Extracts the function's ZIP and its layers (later layers overwrite
/// earlier files), then gives every file and folder the permissions the
/// sandbox user has on Lambda, where the files belong to root: the "other"
/// bits, without write. A file a ZIP stored as 0600 is unreadable there,
/// and here too. `local_layers` stands in for external layers by name.
pub fn lay_out(
    config: &Config,
    plan: &FunctionPlan,
    local_layers: &BTreeMap<String, PathBuf>,
) -> Result<Layout> {
    let sandboxes = config.cache_dir().join("sandbox");
    fs::create_dir_all(&sandboxes).with_context(|| format!("creating {}", sandboxes.display()))?;
    let work = TempDir::beside(&sandboxes.join(&plan.name))?;
    let watched = reaper::watch(Owned::Folder(work.path().to_path_buf()));
    let task = work.path().join("task");
    fs::create_dir_all(&task)?;
    if plan.image_layers.is_empty() {
        archive::extract_zip(&config.root.join(&plan.zip), &task)
            .with_context(|| format!("extracting the ZIP of `{}`", plan.name))?;
    }
    let mut parts = Vec::new();
    for layer in &plan.image_layers {
        let blob = config.root.join(&layer.blob);
        if layer.task {
            unpack_image_layer(&blob, facts::TASK_ROOT, &task)
                .with_context(|| format!("unpacking the image layer {} of `{}`", layer.blob, plan.name))?;
        } else {
            parts.push(Part {
                path: blob,
                image_layer: true,
                what: format!("the image layer {} of `{}`", layer.blob, plan.name),
            });
        }
    }
    as_sandbox_user_sees(&task)?;
    let mut notes = Vec::new();
    for layer in &plan.layers {
        let path = match (&layer.zip, local_layers.get(&layer.name)) {
            (_, Some(local)) => local.clone(),
            (Some(zip), None) => config.root.join(zip),
            (None, None) => {
                notes.push(format!(
                    "layer `{}` is external: not available here (give a local copy with --layer {}=ZIP)",
                    layer.name, layer.name
                ));
                continue;
            }
        };
        parts.push(Part {
            path,
            image_layer: false,
            what: format!("layer `{}`", layer.name),
        });
    }
    let (opt, in_use) = if parts.is_empty() {
        let opt = work.path().join(OPT);
        fs::create_dir_all(&opt)?;
        as_sandbox_user_sees(&opt)?;
        (opt, None)
    } else {
        let (opt, lock) = kept_opt(&laid_out_root(config), &parts)?;
        (opt, Some(lock))
    };
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755))?;
    Ok(Layout {
        work,
        _watched: watched,
        task,
        opt,
        notes,
        _in_use: in_use,
    })
}

/// Where kept `/opt` trees are: in the cache every repository of the user
/// shares when there is one that the sandbox user reaches, else in the
/// repository's own cache folder.
fn laid_out_root(config: &Config) -> PathBuf {
    let shared = UserCache::locate().ok().flatten().filter(|cache| {
        // Made first, so that the first run decides as the later ones do.
        let _ = fs::create_dir_all(&cache.dir);
        contain::sandbox_reaches(&cache.dir)
    });
    match shared {
        Some(cache) => cache.dir.join(LAID_OUT_DIR),
        None => config.cache_dir().join(LAID_OUT_DIR),
    }
}

/// The `/opt` of `parts` from `root`, laid out now if no sound tree is kept.
fn kept_opt(root: &Path, parts: &[Part]) -> Result<(PathBuf, File)> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut key = KeyHasher::default();
    key.part("format", FORMAT);
    let mut stamps = Vec::new();
    for part in parts {
        let stamp = stamp_of(part)?;
        let kind = if part.image_layer { "image layer" } else { "zip" };
        // The bytes read now, whatever the manifest says they were.
        let digest = file_sha256(&part.path).with_context(|| format!("reading {}", part.path.display()))?;
        key.part(kind, digest.hex);
        stamps.push(stamp);
    }
    let dir = root.join(key.hex());
    if let Some(lock) = reuse(&dir)? {
        return Ok((dir.join(OPT), lock));
    }
    let temp = TempDir::beside(&dir)?;
    let watched = reaper::watch(Owned::Folder(temp.path().to_path_buf()));
    let made = fill(temp.path(), parts).and_then(|()| {
        for (part, stamp) in parts.iter().zip(&stamps) {
            if stamp_of(part)? != *stamp {
                anyhow::bail!(
                    "{} changed while {} was laid out from it (is another program writing there?)",
                    part.path.display(),
                    part.what
                );
            }
        }
        Ok(())
    });
    if made.is_err() {
        make_writable(temp.path());
    }
    made?;
    // Another run may have laid out the same tree meanwhile: theirs is as good.
    if fs::rename(temp.path(), &dir).is_ok() {
        std::mem::forget(temp);
    } else {
        make_writable(temp.path());
    }
    drop(watched);
    let lock = reuse(&dir)?.with_context(|| {
        format!(
            "{} changed as soon as it was laid out (is another program writing there?)",
            dir.display()
        )
    })?;
    prune(root, &dir);
    Ok((dir.join(OPT), lock))
}

/// What would change if the file of `part` were written or replaced.
fn stamp_of(part: &Part) -> Result<String> {
    let metadata = fs::metadata(&part.path).with_context(|| format!("reading {}", part.path.display()))?;
    Ok(crate::store::stamp(&metadata))
}

/// Lays out `parts` in order into `dir/opt`, read-only, and lists it.
fn fill(dir: &Path, parts: &[Part]) -> Result<()> {
    let opt = dir.join(OPT);
    fs::create_dir_all(&opt)?;
    for part in parts {
        if part.image_layer {
            unpack_image_layer(&part.path, facts::LAYER_MOUNT, &opt)
        } else {
            archive::extract_zip(&part.path, &opt)
        }
        .with_context(|| format!("extracting {}", part.what))?;
    }
    as_sandbox_user_sees(&opt)?;
    write_atomic(&dir.join(LISTING), listing(&opt)?.as_bytes())
}

/// The kept tree at `dir`, locked for this run, if it is still what its
/// listing says; a damaged one is removed (and `None`).
fn reuse(dir: &Path) -> Result<Option<File>> {
    let path = dir.join(LISTING);
    let Ok(file) = File::open(&path) else {
        if dir.exists() {
            discard(dir);
        }
        return Ok(None);
    };
    // Waits while a prune holds it; the tree may be gone after.
    file.lock_shared()
        .with_context(|| format!("locking {}", path.display()))?;
    let recorded = fs::read_to_string(&path).ok();
    if recorded.is_some() && recorded == listing(&dir.join(OPT)).ok() {
        // The newest used are the last pruned.
        let _ = file.set_modified(SystemTime::now());
        return Ok(Some(file));
    }
    drop(file);
    discard(dir);
    Ok(None)
}

/// Every entry under `opt`, in a fixed order, as what would change if it
/// were written, replaced or had its mode changed.
fn listing(opt: &Path) -> Result<String> {
    let mut text = String::new();
    let mut stack = vec![(opt.to_path_buf(), String::new())];
    while let Some((path, name)) = stack.pop() {
        let metadata = fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let kind = if metadata.is_dir() {
            'd'
        } else if metadata.is_file() {
            'f'
        } else {
            'o'
        };
        let _ = writeln!(
            text,
            "{kind} {:o} {} {}.{} {}.{} {} {name}",
            metadata.mode(),
            metadata.len(),
            metadata.mtime(),
            metadata.mtime_nsec(),
            metadata.ctime(),
            metadata.ctime_nsec(),
            metadata.ino()
        );
        if metadata.is_dir() {
            let mut children: Vec<(PathBuf, String)> = fs::read_dir(&path)
                .with_context(|| format!("listing {}", path.display()))?
                .map(|entry| {
                    let entry = entry?;
                    let child = format!("{name}/{}", entry.file_name().to_string_lossy());
                    Ok((entry.path(), child))
                })
                .collect::<std::io::Result<_>>()?;
            children.sort_by(|a, b| b.1.cmp(&a.1));
            stack.extend(children);
        }
    }
    Ok(text)
}

/// Removes the kept tree at `dir` (moved aside first, so that a run that
/// looks for it meanwhile lays out its own).
fn discard(dir: &Path) {
    let aside = temp_sibling(dir);
    if fs::rename(dir, &aside).is_ok() {
        make_writable(&aside);
        let _ = fs::remove_dir_all(&aside);
    }
}

/// Removes the kept trees beyond the newest [`KEEP`] that no run holds.
fn prune(root: &Path, made: &Path) {
    let Ok(items) = fs::read_dir(root) else { return };
    let mut trees: Vec<(SystemTime, PathBuf)> = items
        .flatten()
        .filter(|item| !item.file_name().to_string_lossy().starts_with('.'))
        .map(|item| {
            let used = fs::metadata(item.path().join(LISTING))
                .and_then(|metadata| metadata.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (used, item.path())
        })
        .filter(|(_, path)| path != made)
        .collect();
    trees.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
    for (_, dir) in trees.into_iter().skip(KEEP) {
        match File::open(dir.join(LISTING)) {
            // Held by a run: kept until it is not.
            Ok(file) if file.try_lock().is_err() => {}
            _ => discard(&dir),
        }
    }
}

/// One of the image's own layers, every file of it under `root`
/// ([`facts::TASK_ROOT`] or [`facts::LAYER_MOUNT`]), into `into` (later
/// layers overwrite earlier files, as in the image).
fn unpack_image_layer(blob: &Path, root: &str, into: &Path) -> Result<()> {
    let prefix = facts::in_image_layer(root);
    oci::unpack_layer(blob, |path: &str, bytes: Vec<u8>, executable: bool| {
        let Some(rest) = path.strip_prefix(&prefix) else {
            anyhow::bail!("`{path}` is not under {root}");
        };
        if rest
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            anyhow::bail!("`{path}` is not a plain path");
        }
        let dest = into.join(rest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&dest, bytes).with_context(|| format!("writing {}", dest.display()))?;
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
    })
}

/// Every mode becomes what "other" may do, read and execute only.
fn as_sandbox_user_sees(path: &Path) -> Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    if metadata.is_dir() {
        for entry in fs::read_dir(path)? {
            as_sandbox_user_sees(&entry?.path())?;
        }
    }
    let other = metadata.mode() & 0o005;
    fs::set_permissions(path, fs::Permissions::from_mode(other * 0o111))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

impl Drop for Layout {
    fn drop(&mut self) {
        // Read-only folders cannot be emptied by a user who is not root.
        make_writable(self.work.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::archive::{write_zip, Content, Entry};

    fn zip(dir: &Path, name: &str, files: &[(&str, &str)]) -> Part {
        let path = dir.join(name);
        let entries = files
            .iter()
            .map(|(name, text)| Entry {
                path: name.to_string(),
                content: Content::Bytes(text.as_bytes().to_vec()),
                executable: false,
            })
            .collect();
        write_zip(&path, entries).unwrap();
        Part {
            path,
            image_layer: false,
            what: name.to_string(),
        }
    }

    fn read(opt: &Path, name: &str) -> String {
        fs::read_to_string(opt.join(name)).unwrap()
    }

    #[test]
    fn a_kept_tree_is_reused_whole_and_laid_out_again_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("laid-out");
        let parts = [
            zip(
                dir.path(),
                "core.zip",
                &[("python/a.py", "core"), ("python/b.py", "b")],
            ),
            zip(dir.path(), "sms.zip", &[("python/a.py", "sms")]),
        ];
        let (opt, lock) = kept_opt(&root, &parts).unwrap();
        // Later layers overwrite earlier files.
        assert_eq!(read(&opt, "python/a.py"), "sms");
        assert_eq!(read(&opt, "python/b.py"), "b");
        let before = listing(&opt).unwrap();
        drop(lock);
        let (again, _lock) = kept_opt(&root, &parts).unwrap();
        assert_eq!(again, opt, "the same parts reuse the same tree");
        assert_eq!(listing(&again).unwrap(), before, "nothing was laid out again");
        drop(_lock);

        // Damage: a file changed in place (its folder made writable to do it).
        fs::set_permissions(opt.join("python"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(opt.join("python/b.py"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(opt.join("python/b.py"), "tampered").unwrap();
        let (again, _lock) = kept_opt(&root, &parts).unwrap();
        assert_eq!(
            read(&again, "python/b.py"),
            "b",
            "a damaged tree is laid out again"
        );
    }

    #[test]
    fn a_part_changed_in_place_is_a_new_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("laid-out");
        let parts = [zip(dir.path(), "core.zip", &[("python/a.py", "one")])];
        let (first, _lock) = kept_opt(&root, &parts).unwrap();
        // The same name, other bytes: the manifest's digest is not what keys it.
        let changed = zip(dir.path(), "core.zip", &[("python/a.py", "two")]);
        let (second, _lock2) = kept_opt(&root, &[changed]).unwrap();
        assert_ne!(first, second);
        assert_eq!(read(&second, "python/a.py"), "two");
    }

    #[test]
    fn trees_beyond_the_newest_are_pruned_unless_held() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("laid-out");
        let held_part = [zip(dir.path(), "held.zip", &[("a", "held")])];
        let (held, _held) = kept_opt(&root, &held_part).unwrap();
        for n in 0..KEEP + 3 {
            let part = [zip(dir.path(), &format!("{n}.zip"), &[("a", &n.to_string())])];
            drop(kept_opt(&root, &part).unwrap());
        }
        let kept = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .filter(|item| !item.file_name().to_string_lossy().starts_with('.'))
            .count();
        // The newest KEEP, the last made, and the held one.
        assert_eq!(kept, KEEP + 2);
        assert_eq!(read(&held, "a"), "held", "a held tree is not pruned");
    }
}
