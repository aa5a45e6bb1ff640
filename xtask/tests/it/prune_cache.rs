//! `cargo xtask prune-cache` on a cache of finished distributions laid out
//! by hand as the store lays them out (`finished/<key>/meta.json` and the
//! entry's files): the entries used longest ago (the oldest `meta.json`
//! mtime) go first, down to `XTASK_CACHE_MAX` or `--max-size`; `0` empties
//! it; a bad size or a relative `XTASK_CACHE_DIR` is exit 2; no cache
//! folder at all is said, not an error. It needs no configuration.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::support::Repo;

/// An entry of `bytes` bytes of files in all, its `meta.json` last
/// modified (that is, the entry last used) `seconds` after the epoch.
fn entry(cache: &Path, key: &str, bytes: usize, seconds: u64) -> PathBuf {
    let dir = cache.join("finished").join(key);
    fs::create_dir_all(dir.join("python/pkg")).unwrap();
    let meta = dir.join("meta.json");
    fs::write(&meta, "{}").unwrap();
    fs::write(dir.join("python/pkg/data.bin"), vec![7u8; bytes - 2]).unwrap();
    let file = fs::File::options().write(true).open(&meta).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .unwrap();
    dir
}

fn keys(cache: &Path) -> Vec<String> {
    let mut keys: Vec<String> = fs::read_dir(cache.join("finished"))
        .unwrap()
        .map(|item| item.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    keys.sort();
    keys
}

#[test]
fn prune_cache_removes_the_entries_used_longest_ago_down_to_the_bound() {
    // No `[workspace.metadata.lambda]`: the cache is the user's, not the repository's.
    let repo = Repo::new("");
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let dir = cache.to_str().unwrap();
    // Names in another order than use: the age decides, not the name.
    entry(&cache, "aa-used-second", 4000, 2_000);
    entry(&cache, "mm-used-last", 4000, 3_000);
    entry(&cache, "zz-used-first", 4000, 1_000);
    // What a write interrupted by a process long gone left behind.
    fs::create_dir_all(cache.join("finished/.half.tmp-999999999-0")).unwrap();

    let bad = repo.xtask_with(
        &["prune-cache", "--max-size", "nonsense"],
        &[("XTASK_CACHE_DIR", dir)],
    );
    bad.fails_with(2, "--max-size: `nonsense` is not a size");
    let bad = repo.xtask_with(
        &["prune-cache"],
        &[("XTASK_CACHE_DIR", dir), ("XTASK_CACHE_MAX", "lots")],
    );
    bad.fails_with(2, "XTASK_CACHE_MAX=lots is not a size");
    let relative = repo.xtask_with(
        &["prune-cache", "--max-size", "0"],
        &[("XTASK_CACHE_DIR", "cache")],
    );
    relative.fails_with(2, "XTASK_CACHE_DIR=cache is not an absolute path");
    let dry = repo.xtask_with(
        &["prune-cache", "--dry-run", "--max-size", "0"],
        &[("XTASK_CACHE_DIR", dir)],
    );
    dry.success();
    assert!(dry.stderr().contains("would prune"), "{}", dry.stderr());
    assert_eq!(keys(&cache).len(), 4, "a refused or dry run removes nothing");

    // 12,000 bytes against a bound of 9,000: the entry used first goes.
    let run = repo.xtask_with(
        &["prune-cache"],
        &[("XTASK_CACHE_DIR", dir), ("XTASK_CACHE_MAX", "9000")],
    );
    run.success();
    let line =
        format!("prune-cache: {dir}: removed 1 entry (3.9 KiB), kept 2 entries (7.8 KiB) of at most 8.8 KiB");
    assert!(run.stderr().contains(&line), "no {line:?} in:\n{}", run.stderr());
    assert_eq!(keys(&cache), ["aa-used-second", "mm-used-last"]);

    // The flag wins over the variable.
    let run = repo.xtask_with(
        &["prune-cache", "--max-size=5 KiB"],
        &[("XTASK_CACHE_DIR", dir), ("XTASK_CACHE_MAX", "1 GiB")],
    );
    run.success();
    assert_eq!(keys(&cache), ["mm-used-last"]);

    let run = repo.xtask_with(&["prune-cache", "--max-size", "0"], &[("XTASK_CACHE_DIR", dir)]);
    run.success();
    let line = format!("prune-cache: {dir}: removed 1 entry (3.9 KiB), kept 0 entries (0 B) of at most 0 B");
    assert!(run.stderr().contains(&line), "no {line:?} in:\n{}", run.stderr());
    assert!(keys(&cache).is_empty(), "{:?}", keys(&cache));
}

#[test]
fn prune_cache_without_a_cache_folder_says_so() {
    let repo = Repo::new("");
    let none = [
        ("XTASK_CACHE_DIR", ""),
        ("XDG_CACHE_HOME", ""),
        ("HOME", ""),
        ("XTASK_CACHE_MAX", "1 GiB"),
    ];
    let run = repo.xtask_with(&["prune-cache"], &none);
    run.success();
    assert!(run.stderr().contains("nothing is cached"), "{}", run.stderr());
    // A folder named but never written: nothing to remove.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("never-written");
    let env = [
        ("XTASK_CACHE_DIR", dir.to_str().unwrap()),
        ("XTASK_CACHE_MAX", "1 GiB"),
    ];
    let run = repo.xtask_with(&["prune-cache"], &env);
    run.success();
    assert!(
        run.stderr()
            .contains("removed 0 entries (0 B), kept 0 entries (0 B)"),
        "{}",
        run.stderr()
    );
    assert!(!dir.exists(), "pruning creates no cache");
}
