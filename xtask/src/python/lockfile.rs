//! A dependency profile's lock: every distribution it installs, pinned, with
//! the sha256 of each allowed file, resolved once for one runtime and
//! architecture by `cargo xtask lock` and installed as it is by
//! `build-layers` (`--no-deps --require-hashes`: nothing is resolved again).
//!
//! The format is a requirements file with `--hash` options, as
//! `uv pip compile --generate-hashes` writes it: pip and uv both install it
//! (the build image has pip only), which PEP 751's `pylock.toml` cannot
//! claim for pip yet. A header records the sha256 of each file it was
//! resolved from, so a lock older than its requirements is refused with
//! what changed. It names no index and no find-links folder: the hashes
//! decide the bytes, and where they are fetched from is the installing
//! user's configuration (pip would let an index line in the file win over
//! `PIP_INDEX_URL`). A lock that still names one was written by an older
//! xtask and is refused until `cargo xtask lock` rewrites it (its pins kept).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use xshell::Shell;

use crate::config::{self, Config, LayerSource, Platform};
use crate::facts::{Arch, Runtime};
use crate::ground::atomic;
use crate::ground::error::UsageError;
use crate::python::installer::{self, Installer};
use crate::python::requirements;

/// The header line that records what a lock was resolved from.
const INPUTS: &str = "# inputs-sha256: ";
/// One header line per input: its sha256 and path, to say what changed.
const INPUT: &str = "# input-sha256: ";

/// `layers/core/requirements.txt` → `layers/core/requirements.python3.11-x86_64.lock`.
pub fn path(requirements: &Path, runtime: Runtime, arch: Arch) -> PathBuf {
    let stem = requirements
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    requirements.with_file_name(format!("{stem}.{}-{}.lock", runtime.name, arch.name()))
}

/// Whether `requirements` (relative to `root`) has a lock for any runtime
/// and architecture.
pub fn any_exists(root: &Path, requirements: &Path) -> bool {
    let Some(stem) = requirements
        .file_stem()
        .map(|stem| format!("{}.", stem.to_string_lossy()))
    else {
        return false;
    };
    let dir = root
        .join(requirements)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    fs::read_dir(dir).is_ok_and(|items| {
        items.flatten().any(|item| {
            let name = item.file_name().to_string_lossy().into_owned();
            name.starts_with(&stem) && name.ends_with(".lock") && item.path().is_file()
        })
    })
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

/// What a lock was resolved from: the requirements file, every file it
/// includes or constrains (not the wheels of local folders: a new wheel
/// there is picked up by `cargo xtask lock --upgrade`, not by invalidating
/// the lock), and the locks of the profiles it is stacked on (their pins
/// held it), each with its sha256, and one sha256 over them all.
pub struct Inputs {
    pub combined: String,
    /// `(path, sha256 or "missing", what it is to the lock)`.
    pub files: Vec<(PathBuf, String, Role)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Requirements,
    Included,
    BaseLock,
}

pub fn inputs(root: &Path, requirements: &Path, key: &str, base_locks: &[PathBuf]) -> Result<Inputs> {
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    for base in base_locks {
        let bytes = fs::read(root.join(base)).ok();
        hasher.update(base.display().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(bytes.as_deref().unwrap_or_default());
        hasher.update([0]);
        let digest = bytes.map_or_else(
            || "missing".to_string(),
            |bytes| crate::ground::digest::bytes_sha256(&bytes),
        );
        files.push((base.clone(), digest, Role::BaseLock));
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
        let role = if file == requirements {
            Role::Requirements
        } else {
            Role::Included
        };
        files.push((file, crate::ground::digest::bytes_sha256(&bytes), role));
    }
    Ok(Inputs {
        combined: format!("{:x}", hasher.finalize()),
        files,
    })
}

fn is_distribution(file: &Path) -> bool {
    file.extension()
        .is_some_and(|ext| ext == "whl" || ext == "gz" || ext == "zip")
}

/// What a lock on disk says about itself.
pub enum State {
    Missing,
    Current,
    /// Resolved from other inputs than today's: what changed, in a phrase.
    Stale(String),
    /// Written by an older xtask: it names an index (the line), which would
    /// override the user's own index configuration.
    NamesIndex(String),
}

/// The options a lock no longer carries: where to fetch from is the
/// installing user's configuration.
const INDEX_OPTIONS: &[&str] = &[
    "--index-url",
    "--extra-index-url",
    "--find-links",
    "--no-index",
    "--trusted-host",
    "-i",
    "-f",
];

fn is_index_line(line: &str) -> bool {
    let line = line.trim_start();
    // Every plan reads every lock whole: most of its lines are pins and
    // `--hash=` options, which are passed over without trying each option.
    if !line.starts_with('-') || line.starts_with("--hash") {
        return false;
    }
    INDEX_OPTIONS.iter().any(|option| {
        line.strip_prefix(option)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '=', '\t']))
    })
}

/// The first line of `text` that names an index, if any.
pub fn index_line(text: &str) -> Option<&str> {
    text.lines().find(|line| is_index_line(line))
}

/// What `lock` and `lock --check` say of a lock: read whole.
pub fn state(root: &Path, lock: &Path, inputs: &Inputs) -> State {
    read_state(root, lock, inputs, index_line)
}

/// What a plan says of a lock: every plan reads every lock, so it looks
/// for index options only above the first pin, where uv writes them and
/// where a lock of an older xtask has them. The install reads the whole of
/// the copy it installs ([`index_line`]), so an option further down stops
/// the build there.
pub fn planned_state(root: &Path, lock: &Path, inputs: &Inputs) -> State {
    read_state(root, lock, inputs, |text| {
        text.lines()
            .take_while(|line| {
                !line
                    .trim_start()
                    .starts_with(|first: char| first.is_ascii_alphanumeric())
            })
            .find(|line| is_index_line(line))
    })
}

fn read_state(root: &Path, lock: &Path, inputs: &Inputs, find_index: impl Fn(&str) -> Option<&str>) -> State {
    let Ok(text) = fs::read_to_string(root.join(lock)) else {
        return State::Missing;
    };
    if let Some(line) = find_index(&text) {
        return State::NamesIndex(line.trim().to_string());
    }
    let recorded = text.lines().find_map(|line| line.strip_prefix(INPUTS));
    if recorded == Some(inputs.combined.as_str()) {
        return State::Current;
    }
    State::Stale(what_changed(&text, inputs))
}

/// Why a lock that exists cannot be installed as it is (`None`: it can).
pub fn problem(lock: &Path, state: &State) -> Option<String> {
    match state {
        State::Missing | State::Current => None,
        State::Stale(why) => Some(format!("{}: {why} since it was written", lock.display())),
        State::NamesIndex(line) => Some(format!(
            "{}: names an index (`{line}`: written by an older xtask, it would override your index configuration)",
            lock.display(),
            line = crate::ground::redact::urls(line)
        )),
    }
}

/// The first input whose recorded sha256 differs from today's, as a phrase
/// (`its requirements layers/a/requirements.txt changed`).
fn what_changed(text: &str, inputs: &Inputs) -> String {
    let recorded: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(INPUT))
        .filter_map(|rest| rest.split_once(' '))
        .collect();
    let describe = |path: &Path, role: Role| match role {
        Role::Requirements => format!("its requirements {}", path.display()),
        Role::Included => format!("the included file {}", path.display()),
        Role::BaseLock => format!("its base's lock {}", path.display()),
    };
    if recorded.is_empty() {
        let requirements = inputs
            .files
            .iter()
            .find(|(_, _, role)| *role == Role::Requirements)
            .map_or_else(String::new, |(path, _, _)| path.display().to_string());
        return format!("resolved from other requirements than {requirements}");
    }
    for (path, digest, role) in &inputs.files {
        let label = path.display().to_string();
        match recorded.iter().find(|(_, recorded_path)| *recorded_path == label) {
            None => return format!("{} was added", describe(path, *role)),
            Some((before, _)) if before != digest => return format!("{} changed", describe(path, *role)),
            Some(_) => {}
        }
    }
    if let Some((_, gone)) = recorded.iter().find(|(_, path)| {
        !inputs
            .files
            .iter()
            .any(|(file, _, _)| file.display().to_string() == *path)
    }) {
        return format!("{gone} is no longer one of its inputs");
    }
    "its inputs changed".to_string()
}

/// The lock's text: the header (what it was resolved from), then the pins
/// the resolver wrote, without any index line.
pub fn render(runtime: Runtime, arch: Arch, inputs: &Inputs, resolved: &str) -> String {
    let mut text = format!(
        "# Written by `cargo xtask lock` for {} {} (manylinux wheels for glibc {}.{}): do not edit,\n\
         # run `cargo xtask lock` again after changing the requirements.\n\
         # Where the files come from is the installer's own configuration (PIP_INDEX_URL, UV_INDEX_URL, ...).\n\
         {INPUTS}{}\n",
        runtime.name,
        arch.name(),
        runtime.glibc.0,
        runtime.glibc.1,
        inputs.combined
    );
    for (path, digest, _) in &inputs.files {
        text.push_str(&format!("{INPUT}{digest} {}\n", path.display()));
    }
    text.push('\n');
    let pins = resolved.lines().filter(|line| !is_index_line(line));
    for line in pins.skip_while(|line| line.trim().is_empty()) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// What one lock is resolved from and for: a profile's requirements (its
/// key names it in messages), the platform, the packages to upgrade and
/// the locks of the profiles it is stacked on.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub requirements: &'a Path,
    pub key: &'a str,
    pub runtime: Runtime,
    pub arch: Arch,
    pub upgrade: &'a [String],
    pub base_locks: &'a [PathBuf],
}

/// Resolves the request's requirements (relative to `root`) with uv and writes its
/// lock whole (through a temporary file: never half a lock). Returns the
/// lock's path and how many distributions it pins.
pub fn write(
    sh: &Shell,
    uv: &Installer,
    root: &Path,
    cache_dir: &Path,
    request: &Request,
) -> Result<(PathBuf, usize)> {
    let Request {
        requirements,
        key,
        runtime,
        arch,
        upgrade,
        base_locks,
    } = *request;
    refuse_unlockable(root, requirements, key)?;
    let inputs = inputs(root, requirements, key, base_locks)?;
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
    // uv keeps the pins of the file it writes to: today's lock, unless
    // upgrading (without the index lines an older lock may carry).
    if let Ok(before) = fs::read_to_string(&full) {
        let pins: String = before
            .lines()
            .filter(|line| !is_index_line(line))
            .map(|line| format!("{line}\n"))
            .collect();
        fs::write(&temp, pins).with_context(|| format!("copying {}", lock.display()))?;
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
    let text = render(runtime, arch, &inputs, &resolved);
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
        let inputs = inputs(root.path(), requirements, "k", &[]).unwrap();
        assert!(matches!(state(root.path(), &lock, &inputs), State::Missing));
        fs::write(
            root.path().join(&lock),
            render(
                runtime,
                Arch::X86_64,
                &inputs,
                "--index-url https://pypi.org/simple\n--find-links wheels\ntool==1.0 \\\n    --hash=sha256:ab\n",
            ),
        )
        .unwrap();
        assert!(matches!(state(root.path(), &lock, &inputs), State::Current));
        let text = fs::read_to_string(root.path().join(&lock)).unwrap();
        assert!(
            !text.contains("--index-url") && !text.contains("--find-links"),
            "{text}"
        );
        assert!(
            text.contains("\n\ntool==1.0 \\\n    --hash=sha256:ab\n"),
            "{text}"
        );
        // A new wheel in the folder leaves the lock current; an included file does not.
        fs::write(
            root.path().join("layers/core/wheels/tool-2.0-py3-none-any.whl"),
            "x",
        )
        .unwrap();
        let again = super::inputs(root.path(), requirements, "k", &[]).unwrap();
        assert_eq!(again.combined, inputs.combined);
        fs::write(root.path().join("layers/core/pins.txt"), "tool==2.0\n").unwrap();
        let changed = super::inputs(root.path(), requirements, "k", &[]).unwrap();
        match state(root.path(), &lock, &changed) {
            State::Stale(why) => assert_eq!(why, "the included file layers/core/pins.txt changed"),
            _ => panic!("a changed include makes the lock stale"),
        }
        // A lock of an older xtask, naming an index, is refused as it is.
        fs::write(
            root.path().join(&lock),
            format!(
                "{INPUTS}{}\n--index-url https://pypi.org/simple\ntool==1.0\n",
                changed.combined
            ),
        )
        .unwrap();
        assert!(matches!(
            state(root.path(), &lock, &changed),
            State::NamesIndex(line) if line == "--index-url https://pypi.org/simple"
        ));
        assert!(matches!(
            planned_state(root.path(), &lock, &changed),
            State::NamesIndex(_)
        ));
        // One added below the pins by hand: `lock` sees it, a plan leaves it
        // to the install, which reads the whole lock.
        let appended = format!(
            "{INPUTS}{}\ntool==1.0\n--index-url https://elsewhere/simple\n",
            changed.combined
        );
        fs::write(root.path().join(&lock), &appended).unwrap();
        assert!(matches!(
            state(root.path(), &lock, &changed),
            State::NamesIndex(_)
        ));
        assert!(matches!(
            planned_state(root.path(), &lock, &changed),
            State::Current
        ));
        assert_eq!(
            index_line(&appended),
            Some("--index-url https://elsewhere/simple")
        );
    }
}
