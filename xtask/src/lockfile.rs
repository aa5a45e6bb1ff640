//! A dependency profile's lock: every distribution it installs, pinned, with
//! the sha256 of each allowed file, resolved once for one runtime and
//! architecture by `cargo xtask lock` and installed as it is by
//! `build-layers` (`--no-deps --require-hashes`: nothing is resolved again).
//!
//! The format is a requirements file with `--hash` options, as
//! `uv pip compile --generate-hashes` writes it: pip and uv both install it
//! (the build image has pip only), which PEP 751's `pylock.toml` cannot
//! claim for pip yet. A header records the sha256 of the requirements files
//! it was resolved from, so a lock older than its requirements is refused.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use xshell::Shell;

use crate::atomic;
use crate::config::{self, Config, LayerSource, Platform};
use crate::error::UsageError;
use crate::facts::{Arch, Runtime};
use crate::installer::{self, Installer};
use crate::requirements;

/// The header line that records what a lock was resolved from.
const INPUTS: &str = "# inputs-sha256: ";

/// `layers/core/requirements.txt` → `layers/core/requirements.python3.11-x86_64.lock`.
pub fn path(requirements: &Path, runtime: Runtime, arch: Arch) -> PathBuf {
    let stem = requirements
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    requirements.with_file_name(format!("{stem}.{}-{}.lock", runtime.name, arch.name()))
}

/// The locks of the profiles `name` is stacked on, for `platform` (whether
/// they exist or not).
pub fn base_locks(config: &Config, name: &str, platform: Platform) -> Vec<PathBuf> {
    config::bases_of(&config.layers, name)
        .into_iter()
        .filter_map(|base| match &config.layers[base].source {
            LayerSource::Requirements(requirements) => {
                Some(path(requirements, platform.runtime, platform.arch))
            }
            _ => None,
        })
        .collect()
}

/// The sha256 of the requirements file and of every file it includes or
/// constrains (not the wheels of local folders: a new wheel there is picked
/// up by `cargo xtask lock --upgrade`, not by invalidating the lock), and of
/// the locks of the profiles it is stacked on (their pins held it).
pub fn inputs_sha256(root: &Path, requirements: &Path, key: &str, base_locks: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for base in base_locks {
        hasher.update(base.display().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(fs::read(root.join(base)).unwrap_or_default());
        hasher.update([0]);
    }
    for file in requirements::input_files(root, requirements, key)? {
        if is_distribution(&file) {
            continue;
        }
        let bytes =
            fs::read(root.join(&file)).with_context(|| format!("{key}: reading {}", file.display()))?;
        hasher.update(file.display().to_string().as_bytes());
        hasher.update([0]);
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

fn is_distribution(file: &Path) -> bool {
    file.extension()
        .is_some_and(|ext| ext == "whl" || ext == "gz" || ext == "zip")
}

/// What a lock on disk says about itself.
pub enum State {
    Missing,
    Current,
    /// Resolved from other requirements than today's.
    Stale,
}

pub fn state(root: &Path, lock: &Path, inputs: &str) -> State {
    let Ok(text) = fs::read_to_string(root.join(lock)) else {
        return State::Missing;
    };
    let recorded = text.lines().find_map(|line| line.strip_prefix(INPUTS));
    if recorded == Some(inputs) {
        State::Current
    } else {
        State::Stale
    }
}

/// The lock's text: the header, the index options the install needs, then
/// what the resolver wrote.
pub fn render(runtime: Runtime, arch: Arch, inputs: &str, no_index: bool, resolved: &str) -> String {
    let mut text = format!(
        "# Written by `cargo xtask lock` for {} {} (manylinux wheels for glibc {}.{}): do not edit,\n\
         # run `cargo xtask lock` again after changing the requirements.\n\
         {INPUTS}{inputs}\n",
        runtime.name,
        arch.name(),
        runtime.glibc.0,
        runtime.glibc.1
    );
    if no_index {
        text.push_str("--no-index\n");
    }
    text.push_str(resolved);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Resolves `requirements` (relative to `root`) with uv and writes its
/// lock whole (through a temporary file: never half a lock). Returns the
/// lock's path and how many distributions it pins.
#[allow(clippy::too_many_arguments)]
pub fn write(
    sh: &Shell,
    uv: &Installer,
    root: &Path,
    cache_dir: &Path,
    requirements: &Path,
    key: &str,
    runtime: Runtime,
    arch: Arch,
    upgrade: &[String],
    base_locks: &[PathBuf],
) -> Result<(PathBuf, usize)> {
    refuse_unlockable(root, requirements, key)?;
    let inputs = inputs_sha256(root, requirements, key, base_locks)?;
    let lock = path(requirements, runtime, arch);
    let full = root.join(&lock);
    let temp = atomic::temp_sibling(&full);
    // A stacked profile is resolved under its bases' pins: one consistent set.
    let mut pins = String::new();
    for base in base_locks {
        let text = fs::read_to_string(root.join(base)).map_err(|_| {
            UsageError::new(format!(
                "{key}: stacked on a profile that has no lock yet ({}): lock it first",
                base.display()
            ))
        })?;
        pins.extend(pinned(&text).into_iter().map(|pin| pin + "\n"));
    }
    let constraints = atomic::temp_sibling(&full.with_extension("constraints"));
    let mut extra = upgrade.to_vec();
    if !pins.is_empty() {
        fs::write(&constraints, &pins)?;
        extra.extend(["-c".to_string(), constraints.display().to_string()]);
    }
    // uv keeps the pins of the file it writes to: today's lock, unless upgrading.
    if full.is_file() {
        fs::copy(&full, &temp).with_context(|| format!("reading {}", lock.display()))?;
    }
    let local = sh.clone();
    local.change_dir(root.join(requirements).parent().unwrap_or(root));
    let output = uv
        .compile_command(&local, requirements, &temp, runtime, arch, cache_dir)
        .args(extra)
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {}", uv.id()));
    let resolved = output.and_then(|output| {
        if !output.status.success() {
            anyhow::bail!(
                "{key}: uv could not lock it for {} {}:\n  | {}",
                runtime.name,
                arch.name(),
                installer::last_lines(&output.stderr, 12).join("\n  | ")
            );
        }
        fs::read_to_string(&temp).with_context(|| format!("reading {}", temp.display()))
    });
    let _ = fs::remove_file(&temp);
    let _ = fs::remove_file(&constraints);
    let resolved = resolved?;
    let files = requirements::input_files(root, requirements, key)?;
    let no_index = requirements::says_no_index(root, &files);
    let text = render(runtime, arch, &inputs, no_index, &resolved);
    atomic::write_atomic(&full, text.as_bytes())?;
    let pinned = resolved.lines().filter(|line| line.contains("==")).count();
    Ok((lock, pinned))
}

/// `name==version` of every distribution a lock pins.
pub fn pinned(lock: &str) -> Vec<String> {
    lock.lines()
        .filter(|line| !line.starts_with([' ', '#', '-']) && line.contains("=="))
        .map(|line| line.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// What a lock cannot pin: editable installs, VCS checkouts and plain-HTTP
/// indexes (their files can change under the same name).
fn refuse_unlockable(root: &Path, requirements: &Path, key: &str) -> Result<()> {
    for file in requirements::input_files(root, requirements, key)? {
        if is_distribution(&file) {
            continue;
        }
        let text = fs::read_to_string(root.join(&file)).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            let why = if line.starts_with("-e ") || line.starts_with("--editable") {
                "an editable install"
            } else if line.contains("git+") || line.contains("hg+") || line.contains("svn+") {
                "a VCS checkout"
            } else if line.contains("http://") {
                "a plain-HTTP index or URL"
            } else {
                continue;
            };
            return Err(UsageError::new(format!(
                "{key}: {} line {}: {why} cannot be locked with hashes (pin a released version from an HTTPS index)",
                file.display(),
                number + 1
            ))
            .into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_current_only_for_the_inputs_it_records() {
        let root = tempfile::tempdir().unwrap();
        let requirements = Path::new("layers/core/requirements.txt");
        fs::create_dir_all(root.path().join("layers/core/wheels")).unwrap();
        fs::write(
            root.path().join(requirements),
            "--find-links wheels\n-r pins.txt\n",
        )
        .unwrap();
        fs::write(root.path().join("layers/core/pins.txt"), "tool==1.0\n").unwrap();
        let runtime = Runtime::find("python3.11").unwrap();
        let lock = path(requirements, runtime, Arch::X86_64);
        assert_eq!(lock, Path::new("layers/core/requirements.python3.11-x86_64.lock"));
        let inputs = inputs_sha256(root.path(), requirements, "k", &[]).unwrap();
        assert!(matches!(state(root.path(), &lock, &inputs), State::Missing));
        fs::write(
            root.path().join(&lock),
            render(
                runtime,
                Arch::X86_64,
                &inputs,
                true,
                "tool==1.0 \\\n    --hash=sha256:ab\n",
            ),
        )
        .unwrap();
        assert!(matches!(state(root.path(), &lock, &inputs), State::Current));
        // A new wheel in the folder leaves the lock current; an included file does not.
        fs::write(
            root.path().join("layers/core/wheels/tool-2.0-py3-none-any.whl"),
            "x",
        )
        .unwrap();
        assert_eq!(
            inputs_sha256(root.path(), requirements, "k", &[]).unwrap(),
            inputs
        );
        fs::write(root.path().join("layers/core/pins.txt"), "tool==2.0\n").unwrap();
        let changed = inputs_sha256(root.path(), requirements, "k", &[]).unwrap();
        assert!(matches!(state(root.path(), &lock, &changed), State::Stale));
        let text = fs::read_to_string(root.path().join(&lock)).unwrap();
        assert!(text.contains("--no-index\ntool==1.0"), "{text}");
    }
}
