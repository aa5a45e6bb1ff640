//! Finished distributions, cached by content in the cache every repository
//! of the user shares (`store::user_cache`). What a distribution becomes
//! once the finishing rules ran over it is a function of its installed
//! files, the Python that compiles it, the bytecode mode and the slimming
//! rules: its key hashes exactly those, so a layer assembled from cached
//! distributions holds the bytes a layer finished here would hold. The
//! proof stays the layer's: it imports the whole finished layer either way.
//!
//! A distribution sharing a file with another is finished in the layer
//! every time (which of them a file belongs to is not its own business).
//!
//! Files go into the cache, and come out of it, as hard links where the
//! file system allows (else copies): no bytes copied and no new file to
//! allocate. Nothing writes into a file in place (finishing unlinks and
//! writes, as it must for the installer's own hard links), and a file
//! written anyway no longer matches its entry's stamp: the entry is
//! rehashed, and discarded if its bytes changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Bytecode;
use crate::ground::atomic::link_or_copy;
use crate::ground::digest::{file_sha256, KeyHasher};
use crate::ground::progress::Progress;
use crate::python::layer_content::{dist_files, remove_distribution, shipped_files, DistFiles};
use crate::store::archive::is_executable;
use crate::store::user_cache::{UserCache, FINISHED, LAYERS, PROVEN};
use crate::store::{Entry, Lookup, Store};

/// Bumped whenever what a rule does to the same files changes: every
/// finished distribution cached before then misses.
const FORMAT: &str = "finished-1";

/// Where a cached finished distribution keeps its files, inside its entry.
const FILES: &str = "python";

/// The cache of finished distributions, opened once per run.
pub struct FinishedCache {
    user: UserCache,
    store: Store,
    /// Entries this run wrote: the cache is pruned to its bound after.
    added: AtomicUsize,
}

/// What a cached distribution records besides its files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Data {
    name: String,
    version: String,
    /// Bytes each rule changed it by (removed: positive), by rule name.
    delta: BTreeMap<String, i64>,
}

impl FinishedCache {
    /// The user's cache, or none when no folder can be named for it (no
    /// `XTASK_CACHE_DIR`, `XDG_CACHE_HOME` or `HOME`), said once.
    pub fn open(progress: &dyn Progress) -> Result<Option<FinishedCache>> {
        let Some(user) = UserCache::locate()? else {
            progress.note("finished distributions are not cached: set XTASK_CACHE_DIR or HOME");
            return Ok(None);
        };
        let store = user.store();
        Ok(Some(FinishedCache {
            user,
            store,
            added: AtomicUsize::new(0),
        }))
    }

    /// The modules that did not import when the same layer was proven
    /// before under `key`, if it was.
    pub fn proven(&self, key: &str) -> Option<Vec<String>> {
        let entry = self.verified(PROVEN, key).ok()??;
        serde_json::from_value(entry.data["unimportable"].clone()).ok()
    }

    /// The entry of `kind` under `key`, verified and marked as used now;
    /// a damaged one is discarded, and why is the error.
    fn verified(&self, kind: &str, key: &str) -> Result<Option<Entry>, String> {
        match self.store.lookup(kind, key) {
            Lookup::Hit(entry) => {
                UserCache::touch(&entry.dir);
                Ok(Some(entry))
            }
            Lookup::Miss => Ok(None),
            Lookup::Damaged(why) => {
                let _ = self.store.discard(kind, key);
                Err(format!(
                    "discarding the cache entry {}: {why}",
                    self.store.entry_dir(kind, key).display()
                ))
            }
        }
    }

    /// Remembers a proof's outcome under `key`; a cache that cannot be
    /// written only means the next build proves again.
    pub fn remember_proof(&self, key: &str, unimportable: &[String]) {
        let put = self.store.put_tree(PROVEN, key, |_| {
            Ok(serde_json::json!({ "unimportable": unimportable }))
        });
        if put.is_ok() {
            self.added.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The dependency layer built under `key` by any repository of the
    /// user, verified and put into `store` (the repository's) as its entry;
    /// a damaged one is discarded, with a note.
    pub fn take_layer(&self, store: &Store, kind: &str, key: &str, progress: &dyn Progress) -> Option<Entry> {
        let shared = match self.verified(LAYERS, key) {
            Ok(entry) => entry?,
            Err(why) => {
                progress.note(&format!("shared layer: {why}"));
                return None;
            }
        };
        store.put(kind, key, |dir| copy_entry(&shared, dir)).ok()
    }

    /// Keeps a copy of a dependency layer just built under `key` for the
    /// user's other repositories; a cache that cannot be written is skipped.
    pub fn keep_layer(&self, key: &str, entry: &Entry) {
        if matches!(self.store.lookup(LAYERS, key), Lookup::Hit(_)) {
            return;
        }
        let put = self.store.put(LAYERS, key, |dir| copy_entry(entry, dir));
        if put.is_ok() {
            self.added.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.user.dir
    }

    /// Prunes the cache to `max` bytes when this run added to it.
    pub fn settle(&self, max: u64, progress: &dyn Progress) {
        if self.added.load(Ordering::Relaxed) == 0 {
            return;
        }
        match self.user.prune(max) {
            Ok(pruned) if pruned.removed > 0 => progress.note(&format!(
                "finished-distribution cache over its bound: {} entries used longest ago removed ({})",
                pruned.removed,
                crate::ground::progress::human_bytes(pruned.freed)
            )),
            Ok(_) => {}
            Err(err) => progress.note(&format!(
                "the finished-distribution cache was not pruned: {err:#}"
            )),
        }
    }
}

/// One distribution of a layer being finished.
struct Part {
    dist: DistFiles,
    /// `None`: not cached (it shares a file, or there is no cache).
    key: Option<String>,
    /// Its finished files copied out of the cache (under `reused/<n>/`),
    /// and what it recorded.
    reused: Option<(PathBuf, Data)>,
    /// Its size before the rule running now (a distribution finished here).
    size: u64,
    delta: BTreeMap<String, i64>,
}

/// The distributions of one layer: those the cache holds finished, taken
/// out of the install until the others are finished, then put back.
pub struct Reuse<'a> {
    cache: Option<&'a FinishedCache>,
    parts: Vec<Part>,
}

/// What the key of a distribution's finished files covers beyond them.
pub struct Finishing<'a> {
    /// The Python that compiles (`Builder::compiler_identity`).
    pub compiler: &'a str,
    pub bytecode: Bytecode,
    /// The rules that run, by name, in order.
    pub rules: &'a [String],
}

impl<'a> Reuse<'a> {
    /// Keys every distribution of `site` and takes the finished ones the
    /// cache holds out of it, copied into `reused` (inside the install
    /// folder); a damaged entry is discarded (with a note) and its
    /// distribution finished here.
    pub fn plan(
        cache: Option<&'a FinishedCache>,
        finishing: &Finishing,
        site: &Path,
        reused: &Path,
        progress: &dyn Progress,
    ) -> Result<Reuse<'a>> {
        let dists = dist_files(site)?;
        let mut owners: BTreeMap<&Path, usize> = BTreeMap::new();
        for dist in &dists {
            for file in &dist.files {
                *owners.entry(file.as_path()).or_default() += 1;
            }
        }
        let shared: BTreeSet<usize> = dists
            .iter()
            .enumerate()
            .filter(|(_, dist)| dist.files.iter().any(|file| owners[file.as_path()] > 1))
            .map(|(index, _)| index)
            .collect();
        let parts: Vec<Part> = dists
            .into_par_iter()
            .enumerate()
            .map(|(index, dist)| {
                let key = match cache {
                    Some(_) if !shared.contains(&index) => Some(dist_key(finishing, site, &dist)?),
                    _ => None,
                };
                let reused = match (cache, &key) {
                    (Some(cache), Some(key)) => {
                        take(cache, key, &reused.join(index.to_string()), &dist, progress)
                    }
                    _ => None,
                };
                Ok(Part {
                    dist,
                    key,
                    reused,
                    size: 0,
                    delta: BTreeMap::new(),
                })
            })
            .collect::<Result<_>>()?;
        for part in parts.iter().filter(|part| part.reused.is_some()) {
            remove_distribution(site, &part.dist)?;
        }
        Ok(Reuse { cache, parts })
    }

    /// How many distributions came finished from the cache, of how many.
    pub fn counts(&self) -> (usize, usize) {
        let reused = self.parts.iter().filter(|part| part.reused.is_some()).count();
        (reused, self.parts.len())
    }

    /// Notes the size of each distribution finished here before the rules.
    pub fn measure(&mut self, site: &Path) -> Result<()> {
        for part in self.finished_here() {
            part.size = size_of(site, &part.dist.files)?;
        }
        Ok(())
    }

    /// Notes what `rule` changed each distribution finished here by.
    pub fn after_rule(&mut self, site: &Path, rule: &str) -> Result<()> {
        for part in self.finished_here() {
            let now = size_of(site, &part.dist.files)?;
            *part.delta.entry(rule.to_string()).or_default() += part.size as i64 - now as i64;
            part.size = now;
        }
        Ok(())
    }

    /// What `rule` changed the reused distributions by, together.
    pub fn reused_delta(&self, rule: &str) -> i64 {
        self.parts
            .iter()
            .filter_map(|part| part.reused.as_ref())
            .filter_map(|(_, data)| data.delta.get(rule))
            .sum()
    }

    /// Stores each distribution finished here (its RECORD refreshed) into
    /// the cache, then puts the reused ones back into `site`. A cache that
    /// cannot be written is said once and the build goes on.
    pub fn finish(self, site: &Path, progress: &dyn Progress) -> Result<()> {
        if let Some(cache) = self.cache {
            let failed: Vec<String> = self
                .parts
                .par_iter()
                .filter(|part| part.reused.is_none())
                .filter_map(|part| Some((part, part.key.as_ref()?)))
                .filter_map(|(part, key)| store(cache, key, site, part).err())
                .map(|err| format!("{err:#}"))
                .collect();
            if let Some(first) = failed.first() {
                progress.note(&format!(
                    "{} finished distribution(s) not cached in {}: {first}",
                    failed.len(),
                    cache.dir().display()
                ));
            }
        }
        for part in &self.parts {
            if let Some((from, _)) = &part.reused {
                move_tree(from, site)?;
            }
        }
        Ok(())
    }

    fn finished_here(&mut self) -> impl Iterator<Item = &mut Part> {
        self.parts
            .iter_mut()
            .filter(|part| part.reused.is_none() && part.key.is_some())
    }
}

/// The key of `dist`'s finished files: the format, the compiler, the
/// bytecode mode, the rules, where the layer is mounted, and each of its
/// installed files by path, bytes and executable bit.
fn dist_key(finishing: &Finishing, site: &Path, dist: &DistFiles) -> Result<String> {
    let mut key = KeyHasher::default();
    key.part("format", FORMAT)
        .part("compiler", finishing.compiler)
        .part("bytecode", finishing.bytecode.name())
        .part("rules", finishing.rules.join("\n"))
        .part("mount", crate::facts::LAYER_MOUNT)
        .part("dist-info", dist.dist_info.to_string_lossy().as_bytes());
    let mut files: Vec<&PathBuf> = dist.files.iter().collect();
    files.sort();
    for file in files {
        let path = site.join(file);
        let Ok(metadata) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !metadata.is_file() {
            // A link or a folder listed as a file: hashed by what it is.
            key.part("other", file.to_string_lossy().as_bytes());
            continue;
        }
        let digest = file_sha256(&path)?;
        let mode = if is_executable(&metadata) { "x" } else { "-" };
        key.part("file", file.to_string_lossy().as_bytes())
            .part(mode, digest.hex);
    }
    Ok(key.hex())
}

/// The finished files of `dist` under `key`, verified and copied into
/// `dest`: `None` on a miss, or when the entry is damaged (discarded) or
/// goes while it is copied.
fn take(
    cache: &FinishedCache,
    key: &str,
    dest: &Path,
    dist: &DistFiles,
    progress: &dyn Progress,
) -> Option<(PathBuf, Data)> {
    let entry = match cache.verified(FINISHED, key) {
        Ok(entry) => entry?,
        Err(why) => {
            progress.note(&format!("finished {} {}: {why}", dist.name, dist.version));
            return None;
        }
    };
    let data: Data = serde_json::from_value(entry.data.clone()).ok()?;
    let copied = entry.files.iter().try_for_each(|file| -> Result<()> {
        let relative = file
            .name
            .strip_prefix(&format!("{FILES}/"))
            .context("a finished distribution's file is under python/")?;
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        link_or_copy(&entry.dir.join(&file.name), &target)
    });
    if copied.is_err() {
        let _ = fs::remove_dir_all(dest);
        return None;
    }
    Some((dest.to_path_buf(), data))
}

/// Copies an entry's files into `dir` (a store entry in the making): its data.
fn copy_entry(entry: &Entry, dir: &Path) -> Result<serde_json::Value> {
    for file in &entry.files {
        link_or_copy(&entry.dir.join(&file.name), &dir.join(&file.name))?;
    }
    Ok(entry.data.clone())
}

/// Stores what `part` shipped, finished, in `site`.
fn store(cache: &FinishedCache, key: &str, site: &Path, part: &Part) -> Result<()> {
    if matches!(cache.store.lookup(FINISHED, key), Lookup::Hit(_)) {
        // Another run stored it meanwhile.
        return Ok(());
    }
    let shipped = shipped_files(site, &part.dist.files)?;
    let data = Data {
        name: part.dist.name.clone(),
        version: part.dist.version.clone(),
        delta: part.delta.clone(),
    };
    let put = cache.store.put_tree(FINISHED, key, |dir| {
        for file in &shipped {
            let target = dir.join(FILES).join(file);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            link_or_copy(&site.join(file), &target)?;
        }
        Ok(serde_json::to_value(&data)?)
    });
    match put {
        Ok(_) => {
            cache.added.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        // Another run put the same entry into place first.
        Err(_) if matches!(cache.store.lookup(FINISHED, key), Lookup::Hit(_)) => Ok(()),
        Err(err) => Err(err),
    }
}

/// The bytes of what a distribution whose RECORD lists `files` ships now.
fn size_of(site: &Path, files: &[PathBuf]) -> Result<u64> {
    let mut total = 0;
    for file in shipped_files(site, files)? {
        total += fs::metadata(site.join(&file)).map_or(0, |meta| meta.len());
    }
    Ok(total)
}

/// Moves every file below `from` to the same place below `to`.
fn move_tree(from: &Path, to: &Path) -> Result<()> {
    for item in fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let item = item?;
        let target = to.join(item.file_name());
        if item.file_type()?.is_dir() {
            fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
            move_tree(&item.path(), &target)?;
        } else {
            fs::rename(item.path(), &target).with_context(|| format!("moving {}", target.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (tempfile::TempDir, DistFiles) {
        let root = tempfile::tempdir().unwrap();
        let site = root.path();
        fs::create_dir_all(site.join("pkg")).unwrap();
        fs::create_dir_all(site.join("pkg-1.0.dist-info")).unwrap();
        fs::write(site.join("pkg/__init__.py"), "ANSWER = 42\n").unwrap();
        fs::write(
            site.join("pkg-1.0.dist-info/METADATA"),
            "Name: pkg\nVersion: 1.0\n",
        )
        .unwrap();
        fs::write(
            site.join("pkg-1.0.dist-info/RECORD"),
            "pkg/__init__.py,,\npkg-1.0.dist-info/METADATA,,\npkg-1.0.dist-info/RECORD,,\n",
        )
        .unwrap();
        let dist = dist_files(site).unwrap().remove(0);
        (root, dist)
    }

    fn key(compiler: &str, bytecode: Bytecode, rules: &[&str], site: &Path, dist: &DistFiles) -> String {
        let rules: Vec<String> = rules.iter().map(|rule| rule.to_string()).collect();
        let finishing = Finishing {
            compiler,
            bytecode,
            rules: &rules,
        };
        dist_key(&finishing, site, dist).unwrap()
    }

    #[test]
    fn the_key_misses_for_another_patch_release_bytecode_mode_rule_or_byte() {
        let (root, dist) = site();
        let site = root.path();
        let python = "host CPython 3.11.7 (main, Dec  4 2023, 18:10:11) [GCC 12.2.0]";
        let rules = ["slim: strip-symbols", "bytecode: sourceless"];
        let base = key(python, Bytecode::Sourceless, &rules, site, &dist);
        assert_eq!(
            base,
            key(python, Bytecode::Sourceless, &rules, site, &dist),
            "a key is stable"
        );
        let patch = python.replace("3.11.7", "3.11.8");
        assert_ne!(base, key(&patch, Bytecode::Sourceless, &rules, site, &dist));
        assert_ne!(base, key(python, Bytecode::CheckedHash, &rules, site, &dist));
        assert_ne!(base, key(python, Bytecode::Sourceless, &rules[1..], site, &dist));
        fs::write(site.join("pkg/__init__.py"), "ANSWER = 43\n").unwrap();
        assert_ne!(base, key(python, Bytecode::Sourceless, &rules, site, &dist));
        fs::write(site.join("pkg/__init__.py"), "ANSWER = 42\n").unwrap();
        assert_eq!(base, key(python, Bytecode::Sourceless, &rules, site, &dist));
        let mut mode = fs::metadata(site.join("pkg/__init__.py")).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        fs::set_permissions(site.join("pkg/__init__.py"), mode).unwrap();
        assert_ne!(
            base,
            key(python, Bytecode::Sourceless, &rules, site, &dist),
            "the executable bit counts"
        );
    }
}
