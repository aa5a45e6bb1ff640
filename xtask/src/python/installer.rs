//! The host installer: uv at a pinned version where it can be had (on PATH
//! or bootstrapped into the cache with pip), pip otherwise. Cross-installs
//! wheels for the Lambda runtime's platform, never for the host's.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::facts::{Arch, Runtime};
use crate::ground::atomic::TempDir;
use crate::store::tools::{which, Fact, Planned, Tools};

/// Which installer a run asks for (`--installer`): `auto` takes uv where it
/// can be had, pip otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstallerChoice {
    #[default]
    Auto,
    Uv,
    Pip,
}

/// The uv release this tool is tested with; part of every cache key.
pub const UV_VERSION: &str = "0.13.9";

/// Environment variables that change what an installer installs: part of
/// every dependency layer's key, and passed into the build container. A
/// variable marked `true` names files (constraints, overrides) whose content
/// counts too.
pub const RESULT_VARIABLES: &[(&str, bool)] = &[
    ("PIP_INDEX_URL", false),
    ("PIP_EXTRA_INDEX_URL", false),
    ("PIP_FIND_LINKS", false),
    ("PIP_NO_INDEX", false),
    ("PIP_CONSTRAINT", true),
    ("PIP_PRE", false),
    ("PIP_ONLY_BINARY", false),
    ("PIP_NO_BINARY", false),
    ("PIP_TRUSTED_HOST", false),
    ("UV_INDEX_URL", false),
    ("UV_EXTRA_INDEX_URL", false),
    ("UV_DEFAULT_INDEX", false),
    ("UV_INDEX", false),
    ("UV_FIND_LINKS", false),
    ("UV_NO_INDEX", false),
    ("UV_INDEX_STRATEGY", false),
    ("UV_CONSTRAINT", true),
    ("UV_OVERRIDE", true),
    ("UV_PRERELEASE", false),
    ("UV_RESOLUTION", false),
    ("UV_EXCLUDE_NEWER", false),
];

/// The variables of [`RESULT_VARIABLES`] that say where distributions are
/// fetched from: they decide what an unlocked install resolves, but not
/// what a lock installs (its hashes do), so a locked layer's key leaves
/// them out and two runners behind different mirrors share its entries.
pub const INDEX_LOCATION_VARIABLES: &[&str] = &[
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_TRUSTED_HOST",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
    "UV_INDEX_STRATEGY",
];

/// The host Python that runs pip (for bootstrapping uv or as the fallback).
pub const HOST_PYTHON: &str = "python3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Uv,
    Pip,
}

#[derive(Debug, Clone)]
pub struct Installer {
    pub kind: Kind,
    pub program: PathBuf,
    pub version: String,
}

impl Installer {
    /// `uv 0.13.9`: what the manifest and the cache key record.
    pub fn id(&self) -> String {
        match self.kind {
            Kind::Uv => format!("uv {}", self.version),
            Kind::Pip => format!("pip {}", self.version),
        }
    }

    /// Finds or bootstraps the installer. `notes` receives one line per
    /// fallback taken, so the user knows why pip was chosen. A run that may
    /// not probe says what it would do instead.
    pub fn discover(
        sh: &Shell,
        tools: &Tools,
        cache_dir: &Path,
        choice: InstallerChoice,
        notes: &mut Vec<String>,
    ) -> Result<Planned<Installer>> {
        if choice != InstallerChoice::Pip {
            match find_uv(sh, tools, cache_dir, notes) {
                Ok(found) => return Ok(found),
                Err(err) if choice == InstallerChoice::Uv => {
                    return Err(err.context("--installer uv: uv is not available"));
                }
                Err(err) => notes.push(format!(
                    "uv unavailable ({err:#}); installing with pip, which is slower"
                )),
            }
        }
        let version = tools.about_program(sh, "pip-version", Path::new(HOST_PYTHON), |python| {
            reported_version(cmd!(sh, "{python} -m pip --version"))
        });
        let version = match version {
            Fact::Known(version) => version,
            Fact::Unprobed => return Ok(Planned::Pending(format!("would ask {HOST_PYTHON} for pip's version"))),
            Fact::Absent => bail!(
                "neither uv nor pip is available: install uv ({HOST_PYTHON} -m pip install uv=={UV_VERSION}) or pip"
            ),
        };
        Ok(Planned::Ready(Installer {
            kind: Kind::Pip,
            // The program that was asked, not whatever PATH finds later.
            program: which(Path::new(HOST_PYTHON)).unwrap_or_else(|| PathBuf::from(HOST_PYTHON)),
            version,
        }))
    }

    /// The command that cross-installs `source` into `target` for the
    /// runtime and architecture, binary wheels only; a lock as it is.
    pub fn install_command<'a>(
        &self,
        sh: &'a Shell,
        source: &Source,
        target: &Path,
        runtime: Runtime,
        arch: Arch,
        cache_dir: &Path,
    ) -> xshell::Cmd<'a> {
        let program = &self.program;
        let python_version = runtime.python_version();
        let requirements = source.path();
        let locked = source.install_args();
        match self.kind {
            Kind::Uv => {
                let platform = runtime.uv_platform(arch);
                let mut command = cmd!(
                    sh,
                    "{program} pip install --target {target} --python-platform {platform} --python-version {python_version} --only-binary :all: --no-progress {locked...} -r {requirements}"
                )
                // uv must never fetch an interpreter: the target is a platform, not a venv.
                .env("UV_PYTHON_DOWNLOADS", "never");
                if std::env::var_os("UV_CACHE_DIR").is_none() {
                    command = command.env("UV_CACHE_DIR", cache_dir.join("uv"));
                }
                command
            }
            Kind::Pip => {
                let platforms = runtime
                    .pip_platforms(arch)
                    .into_iter()
                    .flat_map(|tag| ["--platform".to_string(), tag]);
                let mut command = cmd!(
                    sh,
                    "{program} -m pip install --target {target} {platforms...} --implementation cp --python-version {python_version} --only-binary=:all: --no-compile --disable-pip-version-check --no-warn-script-location --no-input {locked...} -r {requirements}"
                );
                if std::env::var_os("PIP_CACHE_DIR").is_none() {
                    command = command.env("PIP_CACHE_DIR", cache_dir.join("pip"));
                }
                command
            }
        }
    }
}

impl Installer {
    /// uv's resolution of `requirements` for the runtime's platform (`sh`
    /// stands in the requirements file's folder, so that its relative
    /// `-r` and `--find-links` read as the install reads them), binary
    /// wheels only, every file's sha256, written to `output` without any
    /// index or find-links line (where the files come from is the
    /// installing user's configuration); pins already in `output` are kept
    /// unless `--upgrade` or `--upgrade-package` are added to the command.
    pub fn compile_command<'a>(
        &self,
        sh: &'a Shell,
        requirements: &Path,
        output: &Path,
        runtime: Runtime,
        arch: Arch,
        cache_dir: &Path,
    ) -> xshell::Cmd<'a> {
        let program = &self.program;
        let platform = runtime.uv_platform(arch);
        let python_version = runtime.python_version();
        let file = requirements.file_name().unwrap_or_default();
        let mut command = cmd!(
            sh,
            "{program} pip compile {file} --python-platform {platform} --python-version {python_version} --only-binary :all: --generate-hashes --no-header --no-annotate --quiet -o {output}"
        )
        .env("UV_PYTHON_DOWNLOADS", "never");
        if std::env::var_os("UV_CACHE_DIR").is_none() {
            command = command.env("UV_CACHE_DIR", cache_dir.join("uv"));
        }
        command
    }
}

/// What a dependency layer installs from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A requirements file, resolved by the installer, held to the
    /// versions of a constraints file when given.
    Requirements {
        file: PathBuf,
        constraints: Option<PathBuf>,
    },
    /// A lock (`lockfile.rs`): every distribution pinned with its hashes,
    /// found in the local folders its requirements name or through the
    /// user's own index configuration (never an index the lock names).
    Lock {
        file: PathBuf,
        /// Absolute paths of the requirements' `--find-links` folders.
        find_links: Vec<PathBuf>,
        no_index: bool,
    },
}

impl Source {
    pub fn requirements(file: PathBuf) -> Source {
        Source::Requirements {
            file,
            constraints: None,
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Source::Requirements { file, .. } | Source::Lock { file, .. } => file,
        }
    }

    /// What pip and uv are told besides `-r`: for a lock, install exactly
    /// these, check every file's hash, resolve nothing; for requirements,
    /// the constraints.
    pub fn install_args(&self) -> Vec<String> {
        match self {
            Source::Requirements {
                constraints: None, ..
            } => Vec::new(),
            Source::Requirements {
                constraints: Some(file),
                ..
            } => {
                vec!["-c".to_string(), file.display().to_string()]
            }
            Source::Lock {
                find_links, no_index, ..
            } => {
                let mut args = vec!["--no-deps".to_string(), "--require-hashes".to_string()];
                if *no_index {
                    args.push("--no-index".to_string());
                }
                for folder in find_links {
                    args.extend(["--find-links".to_string(), folder.display().to_string()]);
                }
                args
            }
        }
    }
}

/// The version `program --version` prints, remembered per binary (and per
/// environment, for a version manager's shim) so that a no-op build does
/// not pay for starting uv.
fn uv_version(sh: &Shell, tools: &Tools, program: &Path) -> Fact {
    tools.about_program(sh, "uv-version", program, |resolved| {
        reported_version(cmd!(sh, "{resolved} --version"))
    })
}

/// The second word of what `command` prints (`uv 0.13.9 (…)`, `pip 24.0 from …`).
fn reported_version(command: xshell::Cmd) -> Option<String> {
    let output = command.quiet().ignore_status().output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    output
        .status
        .success()
        .then(|| text.split_whitespace().nth(1).map(str::to_string))
        .flatten()
}

/// uv on PATH at the pinned version, else the copy bootstrapped into the
/// cache, else a fresh bootstrap with pip. A uv on PATH at another version is
/// used only when bootstrapping fails. The installer runs the binary that
/// was asked for its version, and a fresh bootstrap is asked too: its answer
/// is what the memo remembers, so the next dry run knows it.
fn find_uv(
    sh: &Shell,
    tools: &Tools,
    cache_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Planned<Installer>> {
    let uv = |program: PathBuf, version: String| {
        Planned::Ready(Installer {
            kind: Kind::Uv,
            program,
            version,
        })
    };
    let on_path = uv_version(sh, tools, Path::new("uv"));
    let path_uv = || which(Path::new("uv")).unwrap_or_else(|| PathBuf::from("uv"));
    if on_path == Fact::Known(UV_VERSION.to_string()) {
        return Ok(uv(path_uv(), UV_VERSION.to_string()));
    }
    let home = cache_dir.join("tools").join(format!("uv-{UV_VERSION}"));
    let program = home.join("bin").join("uv");
    match uv_version(sh, tools, &program) {
        Fact::Known(version) if version == UV_VERSION => return Ok(uv(program, version)),
        _ if on_path == Fact::Unprobed => {
            return Ok(Planned::Pending(
                "would ask the uv on PATH for its version".into(),
            ))
        }
        _ if !tools.probe => {
            return Ok(Planned::Pending(format!(
                "would bootstrap uv {UV_VERSION} with pip"
            )))
        }
        _ => {}
    }
    if let Err(err) = bootstrap_uv(sh, &home) {
        if let Fact::Known(version) = on_path {
            return Ok(uv(path_uv(), version));
        }
        return Err(err);
    }
    match uv_version(sh, tools, &program) {
        Fact::Known(version) if version == UV_VERSION => {}
        Fact::Known(version) => bail!(
            "the uv bootstrapped into {} says it is {version}, not {UV_VERSION}: delete that folder and run again",
            home.display()
        ),
        _ => bail!(
            "the uv bootstrapped into {} does not answer `uv --version`: delete that folder and run again",
            home.display()
        ),
    }
    notes.push(format!(
        "uv {UV_VERSION} was not on PATH: bootstrapped it with pip into {} (once)",
        home.display()
    ));
    Ok(uv(program, UV_VERSION.to_string()))
}

fn bootstrap_uv(sh: &Shell, home: &Path) -> Result<()> {
    fs::create_dir_all(home.parent().expect("tools dir"))?;
    let temp = TempDir::beside(home)?;
    let target = temp.path();
    let output = cmd!(
        sh,
        "{HOST_PYTHON} -m pip install --quiet --disable-pip-version-check --no-warn-script-location --target {target} uv=={UV_VERSION}"
    )
    // pip's own cache would land in the home directory: keep it under target/.
    .env("PIP_CACHE_DIR", home.parent().expect("tools dir").join("pip-cache"))
    .quiet()
    .ignore_status()
    .output()
    .with_context(|| format!("running {HOST_PYTHON} -m pip"))?;
    if !output.status.success() {
        bail!(
            "bootstrapping uv {UV_VERSION} with pip failed: {}",
            last_lines(&output.stderr, 3).join(" | ")
        );
    }
    temp.persist(home).context("storing the bootstrapped uv")
}

/// The last `count` non-empty lines of a process's output.
pub fn last_lines(output: &[u8], count: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<String> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_string)
        .collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}

/// Whether the installer's output says an index did not answer (refused,
/// unknown host, timed out): then "no version found" means "not asked".
pub fn index_unreachable(output: &str) -> bool {
    [
        "Connection refused",
        "Failed to establish a new connection",
        "Temporary failure in name resolution",
        "Name or service not known",
        "dns error",
        "Could not fetch URL",
        "Failed to fetch",
        "timed out",
    ]
    .iter()
    .any(|sign| output.contains(sign))
}

/// When the installer found no wheel for a requirement, names it, so that
/// the error can suggest the build container.
pub fn missing_wheel(output: &str) -> Option<String> {
    for line in output.lines() {
        let line = line.trim_start_matches(|ch: char| !ch.is_alphanumeric());
        // pip: "Could not find a version that satisfies the requirement foo==1.0 (from versions: none)"
        if let Some(rest) = line.split("satisfies the requirement ").nth(1) {
            return rest.split_whitespace().next().map(requirement_name);
        }
        // uv 0.13: "  cause: Because foo==1.0 has no usable wheels and …", older
        // uv: "╰─▶ Because foo==1.0 has no usable wheels …", and "… has no
        // wheels with a matching platform tag".
        if line.contains("no usable wheels")
            || line.contains("has no wheels")
            || line.contains("no matching wheel")
        {
            let subject = line.split("Because ").nth(1).unwrap_or(line);
            let subject = subject.strip_prefix("only ").unwrap_or(subject);
            return subject.split_whitespace().next().map(requirement_name);
        }
    }
    None
}

fn requirement_name(requirement: &str) -> String {
    requirement
        .split(['=', '<', '>', '!', '~', '[', ';', ' '])
        .next()
        .unwrap_or(requirement)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_package_without_a_wheel() {
        let pip = "ERROR: Could not find a version that satisfies the requirement sdistonly==1.0 (from versions: none)";
        assert_eq!(missing_wheel(pip).as_deref(), Some("sdistonly"));
        let older_uv = "  × No solution found when resolving dependencies:\n  ╰─▶ Because sdistonly==1.0 has no usable wheels and you require sdistonly==1.0, we can conclude that your requirements are unsatisfiable.";
        assert_eq!(missing_wheel(older_uv).as_deref(), Some("sdistonly"));
        // What uv 0.13.9 prints for a requirement that has only a source distribution.
        let uv = "error: No solution found when resolving dependencies\n  cause: Because sdistonly==1.0 has no usable wheels and you require sdistonly==1.0, we can conclude that your requirements are unsatisfiable.\n\nhint: Wheels are required for `sdistonly` because building from source is disabled for all packages (i.e., with `--no-build`)";
        assert_eq!(missing_wheel(uv).as_deref(), Some("sdistonly"));
        assert_eq!(missing_wheel("network unreachable"), None);
    }
}
