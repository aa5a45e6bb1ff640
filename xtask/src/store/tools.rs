//! Facts about the tools a run uses (uv's version, where the runtime's
//! Python really lives, whether a container engine answers, which id an
//! image has), remembered in `target/lambda/tools/memo.json` under a key made
//! of the files whose change would change the answer (the binary's path,
//! where its links lead, its size, inode and mtime; the engine's socket; its
//! image index). A program that only stands in for another (a version
//! manager's shim: a script, or a link to a differently named binary)
//! answers according to its environment, so its facts are remembered under
//! that environment too. A plan only reads the memo and never starts a
//! process; a run probes what the memo does not know and remembers it, so a
//! dry run shows what the run that follows it does.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::Result;
use xshell::Shell;

use crate::ground::atomic::write_atomic;
use crate::ground::digest::KeyHasher;

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
        self.remember(stamped(label, files), None, compute)
    }

    /// A fact about the program `program` (found on PATH when it has no
    /// `/`), keyed by the binary itself, and also by the environment `sh`
    /// runs it in when the program is a shim. `Absent` when there is no such
    /// program.
    pub fn about_program(
        &self,
        sh: &Shell,
        label: &str,
        program: &Path,
        compute: impl FnOnce(&Path) -> Option<String>,
    ) -> Fact {
        let Some(resolved) = which(program) else {
            return Fact::Absent;
        };
        let context =
            shim(&resolved).map(|manager| environment(manager, &sh.current_dir(), std::env::vars_os()));
        self.remember(stamped(label, &[&resolved]), context, || compute(&resolved))
    }

    /// `compute()` under `key` (and `context`, when the answer depends on one).
    fn remember(
        &self,
        key: String,
        context: Option<String>,
        compute: impl FnOnce() -> Option<String>,
    ) -> Fact {
        let full_key = match &context {
            Some(context) => format!("{key}|environment:{context}"),
            None => key.clone(),
        };
        if let Some(value) = self.memo.lock().expect("memo lock").get(&full_key) {
            return match value {
                Some(value) => Fact::Known(value.clone()),
                None => Fact::Absent,
            };
        }
        if !self.probe {
            return Fact::Unprobed;
        }
        let value = compute();
        let mut memo = self.memo.lock().expect("memo lock");
        if context.is_some() {
            // One environment per shim: the memo must not grow with every shell.
            let prefix = format!("{key}|environment:");
            memo.retain(|known, _| !known.starts_with(&prefix));
        }
        memo.insert(full_key, value.clone());
        self.dirty.store(true, Ordering::Relaxed);
        match value {
            Some(value) => Fact::Known(value),
            None => Fact::Absent,
        }
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

/// `label` and the stamps of `files`: a memo key.
fn stamped(label: &str, files: &[&Path]) -> String {
    let mut key = label.to_string();
    for file in files {
        key.push('|');
        key.push_str(&stamp(file).unwrap_or_else(|| format!("{}:absent", file.display())));
    }
    key
}

/// `path->target:size:inode:mtime` of a file, the identity a memo trusts:
/// a link pointed elsewhere, or a binary replaced, is another file.
fn stamp(path: &Path) -> Option<String> {
    let metadata = fs::metadata(path).ok()?;
    let target = fs::canonicalize(path).ok()?;
    Some(format!(
        "{}->{}:{}:{}:{}.{}",
        path.display(),
        target.display(),
        metadata.len(),
        metadata.ino(),
        metadata.mtime(),
        metadata.mtime_nsec()
    ))
}

/// Version managers whose shims choose what runs, each with the variables
/// and files it chooses by (files looked for from the working directory up,
/// in the home directory and in its root folder; a folder of installed
/// versions changes when one is added).
const MANAGERS: &[Manager] = &[
    Manager {
        name: "pyenv",
        variables: &["PYENV"],
        root: Some(("PYENV_ROOT", ".pyenv")),
        files: &[".python-version", "version", "versions"],
    },
    Manager {
        name: "asdf",
        variables: &["ASDF"],
        root: Some(("ASDF_DATA_DIR", ".asdf")),
        files: &[".tool-versions", ".asdfrc", "installs/python"],
    },
    Manager {
        name: "mise",
        variables: &["MISE", "RTX"],
        root: Some(("MISE_DATA_DIR", ".local/share/mise")),
        files: &[
            "installs/python",
            ".tool-versions",
            ".python-version",
            "mise.toml",
            ".mise.toml",
            "mise.local.toml",
            ".mise.local.toml",
            ".config/mise.toml",
            ".config/mise/config.toml",
        ],
    },
];

#[derive(Debug)]
struct Manager {
    name: &'static str,
    /// Prefixes of the variables it reads.
    variables: &'static [&'static str],
    /// The variable naming its root folder, and the default under the home.
    root: Option<(&'static str, &'static str)>,
    files: &'static [&'static str],
}

/// Whether `program` only stands in for another program, and for which
/// version manager's: `Some(None)` for a shim of no manager we know.
/// A shim is a script (`#!`), or a link to a binary of another name (mise's
/// shims link to mise itself); a link `python3 -> python3.11` is not.
fn shim(program: &Path) -> Option<Option<&'static Manager>> {
    let mut head = [0u8; 4096];
    let read = fs::File::open(program)
        .and_then(|mut file| file.read(&mut head))
        .unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..read]);
    let target = fs::canonicalize(program).ok()?;
    let name_of = |path: &Path| {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        name.trim_end_matches(|ch: char| ch.is_ascii_digit() || ch == '.')
            .to_string()
    };
    let script = head.starts_with("#!");
    if !script && name_of(program) == name_of(&target) {
        return None;
    }
    let target_name = name_of(&target);
    Some(
        MANAGERS
            .iter()
            .find(|manager| target_name == manager.name || (script && head.contains(manager.name))),
    )
}

/// What a shim may answer by: for a known version manager, its variables,
/// `PATH` and `HOME`, and its version files from `dir` up and in the home
/// directory; for another script, every variable. Then the working
/// directory. A digest: the variables may hold secrets.
fn environment(
    manager: Option<&Manager>,
    dir: &Path,
    variables: impl Iterator<Item = (OsString, OsString)>,
) -> String {
    let mut variables: Vec<(OsString, OsString)> = variables
        .filter(|(name, _)| {
            let Some(manager) = manager else {
                return true;
            };
            let name = name.to_string_lossy();
            name == "PATH"
                || name == "HOME"
                || manager.variables.iter().any(|prefix| name.starts_with(prefix))
        })
        .collect();
    variables.sort();
    let mut hasher = KeyHasher::default();
    hasher.part("dir", dir.as_os_str().as_encoded_bytes());
    for (name, value) in &variables {
        hasher.part(&name.to_string_lossy(), value.as_encoded_bytes());
    }
    if let Some(manager) = manager {
        let variable = |wanted: &str| {
            variables
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| PathBuf::from(value))
        };
        let home = variable("HOME");
        let root = manager.root.and_then(|(name, default)| {
            variable(name).or_else(|| home.as_ref().map(|home| home.join(default)))
        });
        let places = dir.ancestors().chain(home.as_deref()).chain(root.as_deref());
        for place in places {
            for file in manager.files {
                let path = place.join(file);
                hasher.part(
                    "file",
                    stamp(&path).unwrap_or_else(|| format!("{}:absent", path.display())),
                );
            }
        }
    }
    hasher.hex()
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

    #[test]
    fn a_shim_is_a_script_or_a_link_to_another_program() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("python3.11");
        fs::write(&binary, b"\x7fELF binary").unwrap();
        assert!(shim(&binary).is_none(), "the interpreter itself");
        let link = dir.path().join("python3");
        std::os::unix::fs::symlink(&binary, &link).unwrap();
        assert!(shim(&link).is_none(), "python3 -> python3.11 is the same program");
        let mise = dir.path().join("mise");
        fs::write(&mise, b"\x7fELF mise").unwrap();
        let mise_shim = dir.path().join("python");
        std::os::unix::fs::symlink(&mise, &mise_shim).unwrap();
        assert_eq!(shim(&mise_shim).unwrap().unwrap().name, "mise");
        let pyenv = dir.path().join("pyenv-shim");
        fs::write(
            &pyenv,
            "#!/usr/bin/env bash\nexec \"$PYENV_ROOT/libexec/pyenv\" exec \"$0\" \"$@\"\n",
        )
        .unwrap();
        assert_eq!(shim(&pyenv).unwrap().unwrap().name, "pyenv");
        let wrapper = dir.path().join("wrapper");
        fs::write(&wrapper, "#!/bin/sh\nexec \"$CHOSEN\" \"$@\"\n").unwrap();
        assert!(shim(&wrapper).unwrap().is_none(), "a script of no known manager");
    }

    #[test]
    fn a_shim_answers_by_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let vars = |pairs: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            pairs
                .iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect()
        };
        let pyenv = MANAGERS.iter().find(|manager| manager.name == "pyenv");
        let home = dir.path().display().to_string();
        let base = vars(&[("HOME", &home), ("PATH", "/bin"), ("UV_INDEX_URL", "a")]);
        let of = |manager, extra: &[(&str, &str)]| {
            let mut all = base.clone();
            all.extend(vars(extra));
            environment(manager, dir.path(), all.into_iter())
        };
        let plain = of(pyenv, &[]);
        assert_eq!(
            of(pyenv, &[("UV_INDEX_URL", "b")]),
            plain,
            "not a variable pyenv reads"
        );
        assert_ne!(of(pyenv, &[("PYENV_VERSION", "3.11.2")]), plain);
        fs::write(dir.path().join(".python-version"), "3.11.2\n").unwrap();
        assert_ne!(of(pyenv, &[]), plain, "pyenv local");
        let unknown = of(None, &[]);
        assert_ne!(of(None, &[("CHOSEN", "/usr/bin/python3.11")]), unknown);
    }

    #[test]
    fn a_shim_is_remembered_under_its_environment_only() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("python3.11");
        fs::write(&shim, "#!/bin/sh\nexec \"$CHOSEN\" \"$@\"\n").unwrap();
        let sh = Shell::new().unwrap();
        let run = Tools::load(dir.path(), true);
        assert_eq!(
            run.about_program(&sh, "python", &shim, |_| Some("a".into())),
            Fact::Known("a".into())
        );
        run.save().unwrap();
        let dry = Tools::load(dir.path(), false);
        assert_eq!(
            dry.about_program(&sh, "python", &shim, |_| panic!("probed")),
            Fact::Known("a".into()),
            "a dry run in the same environment reads what the run learnt"
        );
        let memo = dry.memo.lock().unwrap();
        assert!(memo.keys().all(|key| key.contains("|environment:")), "{memo:?}");
    }
}
