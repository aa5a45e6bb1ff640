//! The builders of dependency layers: which one runs (`auto` settled into
//! container or host, saying why), how each installs a profile, whether it
//! has the runtime's own Python (to compile bytecode and prove that a
//! finished layer imports) and so what is done to a layer after the install.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::config::{BuilderChoice, Bytecode, Config, Layer};
use crate::contain::{self, Contained};
use crate::facts::{self, Arch};
use crate::ground::error::EnvironmentError;
use crate::python::container::{self, Access, ContainerRun, Engine};
use crate::python::installer::InstallerChoice;
use crate::python::installer::Source;
use crate::python::installer::{self, Installer};
use crate::python::interpreter;
use crate::store::inputs::Inputs;
use crate::store::tools::{Planned, Tools};

/// How the layers of this run are built.
#[derive(Debug, Clone)]
pub enum Builder {
    Host {
        installer: Installer,
        /// The runtime's exact Python on this host, if any.
        interpreter: Option<PathBuf>,
        /// Its implementation and full version (`CPython 3.11.7 (…)`): bytecode
        /// may differ between builds.
        interpreter_version: String,
    },
    Container {
        engine: Engine,
        image: String,
        image_id: String,
        /// The `major.minor` of the image's `python3`, if it has one.
        python: Option<String>,
    },
}

/// What is done to a dependency layer after the install, decided for each
/// layer and platform before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    pub bytecode: Bytecode,
    pub slim: bool,
}

impl Finish {
    /// Whether the layer is changed after the install, and so is proven to
    /// import before it ships.
    pub fn transforms(&self) -> bool {
        self.slim || self.bytecode != Bytecode::None
    }
}

/// A builder at work for one platform: the run's shell, the platform's
/// configuration and the builder. What every step of a dependency layer
/// that starts a process (the install, bytecode, the proof) is given.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    pub sh: &'a Shell,
    pub config: &'a Config,
    pub builder: &'a Builder,
}

impl Builder {
    pub fn name(&self) -> &'static str {
        match self {
            Builder::Host { .. } => "host",
            Builder::Container { .. } => "container",
        }
    }

    pub fn installer_id(&self) -> String {
        match self {
            Builder::Host { installer, .. } => installer.id(),
            Builder::Container { .. } => "pip (build image)".to_string(),
        }
    }

    /// The Python that compiles a layer's bytecode, as the keys of finished
    /// distributions know it: its implementation and whole version (a patch
    /// release, a build), or the build image's id and its Python's version.
    pub fn compiler_identity(&self) -> String {
        match self {
            Builder::Host {
                interpreter_version, ..
            } => format!("host {interpreter_version}"),
            Builder::Container { image_id, python, .. } => {
                format!("image {image_id} python {}", python.as_deref().unwrap_or("none"))
            }
        }
    }

    /// Why this builder cannot compile or prove layers for `config`'s
    /// runtime (`None`: it has the runtime's own Python).
    pub fn lacks_runtime_python(&self, config: &Config) -> Option<String> {
        let wanted = config.runtime.python_version();
        match self {
            Builder::Host {
                interpreter: Some(_), ..
            } => None,
            Builder::Host { .. } => Some(format!(
                "no Python {wanted} on this host (install it, or build with --builder container)"
            )),
            Builder::Container { python, image, .. } => match python {
                Some(version) if *version == wanted => None,
                Some(version) => Some(format!(
                    "the image {image} has Python {version}, not the runtime's {wanted} (use {})",
                    config.runtime.default_image(config.arch)
                )),
                None => Some(format!("the image {image} has no python3")),
            },
        }
    }
}

/// What is done to `layer` after the install, for `config`'s platform: the
/// configured `bytecode` and `slim`, or by default sourceless bytecode and
/// slimming wherever the builder has the runtime's own Python to compile
/// and prove the layer (otherwise neither, and `note` says why). A setting
/// that needs that Python where there is none is refused.
pub fn finish_for(config: &Config, layer: &Layer, builder: &Builder) -> Result<(Finish, Option<String>)> {
    let lacking = builder.lacks_runtime_python(config);
    let refuse = |setting: String, why: &str| -> anyhow::Error {
        EnvironmentError::new(format!(
            "{setting} needs the {} runtime's own Python to compile and prove layer `{}`, and {why}; or set it to its default",
            config.runtime.name, layer.name
        ))
        .into()
    };
    let bytecode = match (config.bytecode, &lacking) {
        (Some(Bytecode::None), _) => Bytecode::None,
        (Some(mode), Some(why)) => return Err(refuse(format!("bytecode = \"{}\"", mode.name()), why)),
        (Some(mode), None) => mode,
        (None, None) => Bytecode::Sourceless,
        (None, Some(_)) => Bytecode::None,
    };
    let slim = match (layer.slim.or(config.slim), &lacking) {
        (Some(true), Some(why)) => return Err(refuse("slim = true".to_string(), why)),
        (Some(slim), _) => slim,
        (None, lacking) => lacking.is_none(),
    };
    let defaulted = config.bytecode.is_none() || layer.slim.or(config.slim).is_none();
    let note = match &lacking {
        Some(why) if defaulted => Some(format!(
            "layers for {} {} ship as installed, without bytecode or slimming: {why}",
            config.runtime.name,
            config.arch.name()
        )),
        _ => None,
    };
    Ok((Finish { bytecode, slim }, note))
}

/// Settles `auto`: the container when an engine answers and the image is
/// there (it is never pulled implicitly), otherwise the host. `notes` says
/// which and why, in one short line. A run that may not probe says what it
/// would do instead of starting anything.
pub fn choose_builder(
    sh: &Shell,
    config: &Config,
    choice: InstallerChoice,
    tools: &Tools,
    notes: &mut Vec<String>,
) -> Result<Planned<Builder>> {
    match config.builder {
        BuilderChoice::Host => host_builder(sh, config, choice, tools, notes),
        BuilderChoice::Container => {
            let engine = match container::required_engine(sh, tools)? {
                Planned::Ready(engine) => engine,
                Planned::Pending(what) => return Ok(Planned::Pending(what)),
            };
            container::can_run(config.arch).map_err(|why| {
                EnvironmentError::new(format!("{why}: register qemu-user-static, or use --builder host"))
            })?;
            let image_id = match container::required_image(sh, tools, &engine, &config.image, config.arch)? {
                Planned::Ready(id) => id,
                Planned::Pending(what) => return Ok(Planned::Pending(what)),
            };
            Ok(container_builder(sh, config, tools, engine, image_id))
        }
        BuilderChoice::Auto => auto_builder(sh, config, choice, tools, notes),
    }
}

/// `auto`: the container when it can be had without pulling or emulating,
/// else the host, with a note saying why.
fn auto_builder(
    sh: &Shell,
    config: &Config,
    choice: InstallerChoice,
    tools: &Tools,
    notes: &mut Vec<String>,
) -> Result<Planned<Builder>> {
    let engine = match container::planned_engine(sh, tools) {
        Planned::Ready(engine) => engine,
        Planned::Pending(what) => return Ok(Planned::Pending(what)),
    };
    let Some(engine) = engine else {
        notes.push("builder: host (no container engine answers)".to_string());
        return host_builder(sh, config, choice, tools, notes);
    };
    // Emulating another architecture's build image is slow and often
    // missing; cross-installing its wheels is neither.
    if container::can_run(config.arch).is_err() {
        notes.push(format!(
            "builder: host (cross-installing {} wheels on a {} machine)",
            config.arch.name(),
            Arch::host().map_or("different", Arch::name)
        ));
        return host_builder(sh, config, choice, tools, notes);
    }
    match container::planned_image(sh, tools, &engine, &config.image) {
        Planned::Ready(Some(image_id)) => Ok(container_builder(sh, config, tools, engine, image_id)),
        Planned::Pending(what) => Ok(Planned::Pending(what)),
        Planned::Ready(None) => {
            notes.push(format!(
                "builder: host ({} has no image {}; `builder = \"container\"` pulls it)",
                engine.program, config.image
            ));
            host_builder(sh, config, choice, tools, notes)
        }
    }
}

/// The host builder: the installer, and the runtime's own Python when this
/// host has it.
fn host_builder(
    sh: &Shell,
    config: &Config,
    choice: InstallerChoice,
    tools: &Tools,
    notes: &mut Vec<String>,
) -> Result<Planned<Builder>> {
    let installer = match Installer::discover(sh, tools, &config.cache_dir(), choice, notes)? {
        Planned::Ready(installer) => installer,
        Planned::Pending(what) => return Ok(Planned::Pending(what)),
    };
    // The runtime's own Python compiles bytecode and proves finished
    // layers; without it layers ship as installed (see finish_for).
    let uv = (installer.kind == installer::Kind::Uv).then_some(installer.program.as_path());
    let interpreter = match interpreter::find_interpreter(sh, tools, config.runtime, uv) {
        Planned::Pending(what) => return Ok(Planned::Pending(what)),
        Planned::Ready(found) => found,
    };
    let interpreter_version = match &interpreter {
        Some(python) => match interpreter::full_version(sh, tools, python) {
            Planned::Ready(version) => version,
            Planned::Pending(what) => return Ok(Planned::Pending(what)),
        },
        None => String::new(),
    };
    Ok(Planned::Ready(Builder::Host {
        installer,
        interpreter,
        interpreter_version,
    }))
}

/// The container builder with `image_id`, and the version of its Python.
fn container_builder(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    engine: Engine,
    image_id: String,
) -> Planned<Builder> {
    match container::image_python(sh, tools, &engine, &image_id, config.arch) {
        Planned::Ready(python) => Planned::Ready(Builder::Container {
            engine,
            image: config.image.clone(),
            image_id,
            python,
        }),
        Planned::Pending(what) => Planned::Pending(what),
    }
}

/// Installs `source` into `work/python` (its constraints, if any, are a
/// file inside `work`).
pub fn install(build: &BuildContext, source: &Source, work: &Path) -> Result<()> {
    let config = build.config;
    let output = match build.builder {
        Builder::Host { installer, .. } => installer
            .install_command(
                build.sh,
                source,
                &work.join("python"),
                config.runtime,
                config.arch,
                &config.cache_dir(),
            )
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("running {}", installer.id()))?,
        // By the id the key holds, not the tag: a tag moved since the plan
        // would otherwise build other bytes under this key.
        Builder::Container {
            engine,
            image_id: image,
            ..
        } => {
            let (run, args) = container_install(config, image, source, work)?;
            engine
                .run_command(build.sh, &run, &args)?
                .quiet()
                .ignore_status()
                .output()?
        }
    };
    if output.status.success() {
        return Ok(());
    }
    Err(install_failure(build, &output))
}

/// The build container's run and the installer's arguments for `source`.
fn container_install(
    config: &Config,
    image: &str,
    source: &Source,
    work: &Path,
) -> Result<(ContainerRun, Vec<String>)> {
    let (run, mut args) = match source {
        Source::Requirements { file, .. } => {
            let relative = file
                .strip_prefix(&config.root)
                .context("the requirements file is inside the repository")?;
            (
                container_run(config, image, relative, work)?,
                container::install_args(relative),
            )
        }
        // The same wheels as on the host: the runtime's platform, not the image's.
        Source::Lock {
            file,
            find_links,
            no_index,
        } => {
            // The lock's private copy is in `work`, the container's output folder.
            let name = file.file_name().context("a lock file")?.to_string_lossy();
            let folders = find_links
                .iter()
                .map(|folder| {
                    folder.strip_prefix(&config.root).map(Path::to_path_buf).with_context(|| {
                        format!(
                            "{}: a --find-links folder outside the repository is not mounted in the build container",
                            folder.display()
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let args =
                container::locked_install_args(&name, &folders, *no_index, config.runtime, config.arch);
            (container_run(config, image, Path::new(""), work)?, args)
        }
    };
    if let Source::Requirements {
        constraints: Some(file),
        ..
    } = source
    {
        // The install folder is the container's output folder.
        let name = file.file_name().context("a constraints file")?.to_string_lossy();
        args.extend(["-c".to_string(), format!("{}/{name}", container::OUT_DIR)]);
    }
    Ok((run, args))
}

/// Why the installer failed, in the words that say how to fix it where
/// they are known, with the end of what it said.
fn install_failure(build: &BuildContext, output: &std::process::Output) -> anyhow::Error {
    let (config, builder) = (build.config, build.builder);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut message = format!("the installer failed ({})", builder.installer_id());
    if installer::index_unreachable(&stderr) || installer::index_unreachable(&stdout) {
        message = format!(
            "the installer failed ({}): the package index could not be read (check PIP_INDEX_URL, UV_INDEX_URL, their credentials and pip's or uv's configuration)",
            builder.installer_id()
        );
    } else if let Some(package) =
        installer::missing_wheel(&stderr).or_else(|| installer::missing_wheel(&stdout))
    {
        if matches!(builder, Builder::Host { .. }) {
            message = format!(
                "no wheel of `{package}` for {} {} (manylinux, glibc ≤ {}.{}): build it from source in the Lambda build container with --builder container",
                config.runtime.name,
                config.arch.name(),
                config.runtime.glibc.0,
                config.runtime.glibc.1
            );
        }
    }
    let mut tail = installer::last_lines(&output.stderr, 12);
    if tail.is_empty() {
        tail = installer::last_lines(&output.stdout, 12);
    }
    anyhow::anyhow!("{message}\n  | {}", tail.join("\n  | "))
}

/// `requirements` is relative to the repository, which is mounted whole.
fn container_run(config: &Config, image: &str, requirements: &Path, work: &Path) -> Result<ContainerRun> {
    let cache_dir = config.cache_dir().join("container");
    fs::create_dir_all(&cache_dir)?;
    Ok(ContainerRun {
        image: image.to_string(),
        arch: config.arch,
        input_dir: config.root.clone(),
        workdir: container::requirements_workdir(requirements),
        out_dir: work.to_path_buf(),
        cache_dir,
        access: Access::Install,
    })
}

/// Where `work` is for the runtime's Python of `builder`: the folder
/// itself on the host, its mount in the container.
pub const WORK: &str = "{work}";

/// What a run of the runtime's Python over a layer is: either way it gets
/// no network and none of the caller's variables but the allow-list
/// (`contain.rs`).
#[derive(Debug, Clone, Copy)]
pub enum PythonRun<'a> {
    /// The interpreter's own tools (`compileall`): they read the layer and
    /// run none of it, as the invoking user, who may write into `work`.
    Tool,
    /// Imports of the layer's modules (third-party code): as the sandbox
    /// user when the tool runs as root and that user reaches `work`, which
    /// it may then read, but write only `answer` (a file in `work`).
    Imports { answer: &'a Path },
}

/// What a run of the runtime's Python gave.
pub struct PythonOutput {
    pub output: std::process::Output,
    /// What the containment could not do here (once per run and reason).
    pub notes: Vec<String>,
}

/// Runs the builder's runtime Python with `args`, in which [`WORK`] stands
/// for `work` (mounted writable in the container), contained as `run` says.
pub fn run_python(
    build: &BuildContext,
    work: &Path,
    args: &[String],
    run: PythonRun,
) -> Result<PythonOutput> {
    let mut notes = Vec::new();
    let output = match build.builder {
        Builder::Host { interpreter, .. } => {
            let python = interpreter.as_ref().context("no runtime Python on this host")?;
            host_python(build.config, python, work, args, run, &mut notes)?
        }
        Builder::Container {
            engine,
            image_id: image,
            ..
        } => {
            let cache_dir = build.config.cache_dir().join("container");
            fs::create_dir_all(&cache_dir)?;
            let mut command = vec!["python3".to_string()];
            command.extend(args.iter().map(|arg| arg.replace(WORK, container::OUT_DIR)));
            let user = match run {
                PythonRun::Imports { answer } if contain::is_root() => {
                    contain::grant_read(work)?;
                    contain::answer_file(answer, facts::SANDBOX_UID)?;
                    Some(facts::SANDBOX_UID)
                }
                _ => None,
            };
            let run = ContainerRun {
                image: image.clone(),
                arch: build.config.arch,
                input_dir: work.to_path_buf(),
                workdir: container::OUT_DIR.to_string(),
                out_dir: work.to_path_buf(),
                cache_dir,
                access: Access::Contained { user },
            };
            engine
                .run_command(build.sh, &run, &command)?
                .quiet()
                .ignore_status()
                .output()?
        }
    };
    notes.retain(|note| contain::first_time(note));
    Ok(PythonOutput { output, notes })
}

/// The host's runtime Python, contained: imports of third-party code as
/// the sandbox user when the tool runs as root and it can be had.
fn host_python(
    config: &Config,
    python: &Path,
    work: &Path,
    args: &[String],
    run: PythonRun,
    notes: &mut Vec<String>,
) -> Result<std::process::Output> {
    let here = work.display().to_string();
    let args: Vec<String> = args.iter().map(|arg| arg.replace(WORK, &here)).collect();
    let (python, contained) = match run {
        PythonRun::Imports { answer } if contain::is_root() => {
            let version = config.runtime.python_version();
            match contain::sandbox_python(python, &version, &[work]) {
                Ok(usable) => {
                    contain::grant_read(work)?;
                    contain::answer_file(answer, facts::SANDBOX_UID)?;
                    (usable, Contained::as_sandbox_user(work)?)
                }
                Err(why) => {
                    notes.push(format!("the layer proofs import third-party code as root: {why}"));
                    (python.to_path_buf(), Contained::as_invoker(work)?)
                }
            }
        }
        _ => (python.to_path_buf(), Contained::as_invoker(work)?),
    };
    if let (PythonRun::Imports { .. }, Err(why)) = (run, contain::network_isolation()) {
        notes.push(format!(
            "the layer proofs import third-party code with the network: {why}"
        ));
    }
    // Nothing to read: a module that waits on stdin gets end-of-file.
    let mut command = contained.command(&python);
    command.args(args);
    contained
        .output(command, None)
        .with_context(|| format!("running {}", python.display()))
}

/// `.pyc` compiled by the runtime's own Python, with source paths as they
/// will be at run time (`/opt/python/...`): hash-based (PEP 552) in
/// `__pycache__` beside the sources, or for `sourceless` in place of each
/// source (`module.pyc`, whose sources [`drop_compiled_sources`] removes).
/// `site` is the layer's `python/` folder, written with [`WORK`] for `work`.
pub fn compile_bytecode(build: &BuildContext, mode: Bytecode, site: &str, work: &Path) -> Result<()> {
    let runtime_dir = format!("{}/python", crate::facts::LAYER_MOUNT);
    let site = site.to_string();
    let mut args: Vec<String> = crate::python::interpreter::TOOL_FLAGS
        .iter()
        .chain(&["-m", "compileall", "-q", "-j", "0"])
        .map(|arg| arg.to_string())
        .collect();
    let invalidation = match mode {
        Bytecode::None => return Ok(()),
        Bytecode::Sourceless => {
            // Sourceless files are never checked against a source; the
            // hash-based header keeps them free of timestamps.
            args.push("-b".to_string());
            "unchecked-hash"
        }
        mode => mode.name(),
    };
    args.extend([
        "--invalidation-mode".to_string(),
        invalidation.to_string(),
        "-s".to_string(),
        site.clone(),
        "-p".to_string(),
        runtime_dir,
        site,
    ]);
    let output = run_python(build, work, &args, PythonRun::Tool)?.output;
    // compileall exits 1 when some file does not compile (test templates,
    // Python 2 leftovers); those simply ship without bytecode.
    if !output.status.success() && output.status.code() != Some(1) {
        bail!(
            "compileall failed:\n  | {}",
            installer::last_lines(&output.stderr, 8).join("\n  | ")
        );
    }
    Ok(())
}

/// One dependency layer to build on this machine, or to verify as this
/// machine would have built it when it is fetched: what its step reads.
pub struct LayerJob<'a> {
    pub build: BuildContext<'a>,
    /// What is done after the install.
    pub finish: Finish,
    pub name: &'a str,
    /// What it installs from (absolute paths: see [`source`]).
    pub source: Source,
    /// The inputs of its key: the installer reads a private copy of the
    /// lock hashed there, and a requirements file or wheel that changes
    /// before the install ends fails the step (never new bytes under an
    /// old key).
    pub keyed: &'a Inputs,
    /// The distributions of the profiles it is stacked on: an unlocked
    /// install is held to their versions, and none of them ships.
    pub provided: Vec<(String, String)>,
    /// The ZIPs of those profiles, for the proof that the finished layer
    /// imports.
    pub bases: Vec<PathBuf>,
    /// The cache of finished distributions, when there is one.
    pub cache: Option<&'a super::finished::FinishedCache>,
}
