//! Facts about the tools a run uses (uv's version, where the runtime's
//! Python really lives, whether a container engine answers, which id an
//! image has), remembered in `target/lambda/tools/memo.json` under a key made
//! of the files whose change would change the answer (the binary's path,
//! size and mtime; the engine's socket; its image index). A plan only reads
//! the memo and never starts a process; a run probes what the memo does not
//! know and remembers it.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::Result;

use crate::atomic::write_atomic;

/// What the memo (or a probe) says about a fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Known: the probe answered this.
    Known(String),
    /// Known: the probe ran and had no answer (no such tool, it failed).
    Absent,
    /// Not known, and probing is not allowed in this run (a dry run).
    Unprobed,
}

/// A tool as a plan sees it: ready to use, or what a run would first do to
/// have it (`would bootstrap uv 0.13.9`).
#[derive(Debug, Clone)]
pub enum Planned<T> {
    Ready(T),
    Pending(String),
}

pub struct Tools {
    memo_path: PathBuf,
    memo: Mutex<BTreeMap<String, Option<String>>>,
    dirty: AtomicBool,
    /// Whether this run may start processes to learn facts.
    pub probe: bool,
}

impl Tools {
    pub fn load(cache_dir: &Path, probe: bool) -> Tools {
        let memo_path = cache_dir.join("tools").join("memo.json");
        let memo = fs::read(&memo_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Tools {
            memo_path,
            memo: Mutex::new(memo),
            dirty: AtomicBool::new(false),
            probe,
        }
    }

    /// `compute()`, remembered under `label` and the stamps of `files` (a
    /// file that does not exist stamps as absent).
    pub fn fact(&self, label: &str, files: &[&Path], compute: impl FnOnce() -> Option<String>) -> Fact {
        let mut key = label.to_string();
        for file in files {
            key.push('|');
            key.push_str(&stamp(file).unwrap_or_else(|| format!("{}:absent", file.display())));
        }
        if let Some(value) = self.memo.lock().expect("memo lock").get(&key) {
            return match value {
                Some(value) => Fact::Known(value.clone()),
                None => Fact::Absent,
            };
        }
        if !self.probe {
            return Fact::Unprobed;
        }
        let value = compute();
        self.memo.lock().expect("memo lock").insert(key, value.clone());
        self.dirty.store(true, Ordering::Relaxed);
        match value {
            Some(value) => Fact::Known(value),
            None => Fact::Absent,
        }
    }

    /// A fact about the program `program` (found on PATH when it has no
    /// `/`), keyed by the binary itself. `Absent` when there is no such program.
    pub fn about_program(
        &self,
        label: &str,
        program: &Path,
        compute: impl FnOnce(&Path) -> Option<String>,
    ) -> Fact {
        let Some(resolved) = which(program) else {
            return Fact::Absent;
        };
        self.fact(label, &[&resolved], || compute(&resolved))
    }

    /// Forgets a fact that turned out wrong (an image that vanished).
    pub fn forget(&self, label: &str) {
        let mut memo = self.memo.lock().expect("memo lock");
        let before = memo.len();
        memo.retain(|key, _| key != label && !key.starts_with(&format!("{label}|")));
        if memo.len() != before {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Writes what this run learnt. Nothing in a run that may not probe.
    pub fn save(&self) -> Result<()> {
        if !self.probe || !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let memo = self.memo.lock().expect("memo lock");
        write_atomic(&self.memo_path, &serde_json::to_vec_pretty(&*memo)?)
    }
}

/// `path:size:mtime` of a file, the identity a memo trusts.
fn stamp(path: &Path) -> Option<String> {
    let metadata = fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}.{}",
        path.display(),
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec()
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dry_run_never_computes_and_a_run_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        fs::write(&file, "v1").unwrap();
        let dry = Tools::load(dir.path(), false);
        assert_eq!(dry.fact("version", &[&file], || panic!("probed")), Fact::Unprobed);
        let run = Tools::load(dir.path(), true);
        assert_eq!(
            run.fact("version", &[&file], || Some("1".into())),
            Fact::Known("1".into())
        );
        run.save().unwrap();
        let again = Tools::load(dir.path(), false);
        assert_eq!(
            again.fact("version", &[&file], || panic!("probed")),
            Fact::Known("1".into())
        );
        fs::write(&file, "version 2").unwrap();
        assert_eq!(
            again.fact("version", &[&file], || panic!("probed")),
            Fact::Unprobed
        );
    }
}
