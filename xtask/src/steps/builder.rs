//! The builders of dependency layers: which one runs (`auto` settled into
//! container or host, saying why), and how each installs a profile and
//! compiles bytecode.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use crate::cli::InstallerChoice;
use crate::config::{BuilderChoice, Bytecode, Config};
use crate::container::{self, ContainerRun, Engine};
use crate::error::EnvironmentError;
use crate::facts::Arch;
use crate::installer::Source;
use crate::installer::{self, Installer};
use crate::python;
use crate::tools::{Planned, Tools};

/// How the layers of this run are built.
#[derive(Debug, Clone)]
pub enum Builder {
    Host {
        installer: Installer,
        interpreter: Option<PathBuf>,
    },
    Container {
        engine: Engine,
        image: String,
        image_id: String,
    },
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
    let host = |notes: &mut Vec<String>| -> Result<Planned<Builder>> {
        let installer = match Installer::discover(sh, tools, &config.cache_dir(), choice, notes)? {
            Planned::Ready(installer) => installer,
            Planned::Pending(what) => return Ok(Planned::Pending(what)),
        };
        let interpreter = match config.bytecode {
            Bytecode::None => None,
            _ => {
                let uv = (installer.kind == installer::Kind::Uv).then_some(installer.program.as_path());
                match python::find_interpreter(sh, tools, config.runtime, uv) {
                    Planned::Pending(what) => return Ok(Planned::Pending(what)),
                    Planned::Ready(Some(python)) => Some(python),
                    Planned::Ready(None) => {
                        return Err(EnvironmentError::new(format!(
                            "bytecode = \"{}\" compiles with the runtime's Python {}, which is not on PATH: install it, or build with --builder container, or set bytecode = \"none\"",
                            config.bytecode.name(),
                            config.runtime.python_version()
                        ))
                        .into())
                    }
                }
            }
        };
        Ok(Planned::Ready(Builder::Host {
            installer,
            interpreter,
        }))
    };
    match config.builder {
        BuilderChoice::Host => host(notes),
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
            Ok(Planned::Ready(Builder::Container {
                engine,
                image: config.image.clone(),
                image_id,
            }))
        }
        BuilderChoice::Auto => {
            let engine = match container::planned_engine(sh, tools) {
                Planned::Ready(engine) => engine,
                Planned::Pending(what) => return Ok(Planned::Pending(what)),
            };
            let Some(engine) = engine else {
                notes.push("builder: host (no container engine answers)".to_string());
                return host(notes);
            };
            // Emulating another architecture's build image is slow and often
            // missing; cross-installing its wheels is neither.
            if container::can_run(config.arch).is_err() {
                notes.push(format!(
                    "builder: host (cross-installing {} wheels on a {} machine)",
                    config.arch.name(),
                    Arch::host().map_or("different", Arch::name)
                ));
                return host(notes);
            }
            match container::planned_image(sh, tools, &engine, &config.image) {
                Planned::Ready(Some(image_id)) => Ok(Planned::Ready(Builder::Container {
                    engine,
                    image: config.image.clone(),
                    image_id,
                })),
                Planned::Pending(what) => Ok(Planned::Pending(what)),
                Planned::Ready(None) => {
                    notes.push(format!(
                        "builder: host ({} has no image {}; `builder = \"container\"` pulls it)",
                        engine.program, config.image
                    ));
                    host(notes)
                }
            }
        }
    }
}

/// Installs `source` into `work/python` (its constraints, if any, are a
/// file inside `work`).
pub fn install(sh: &Shell, config: &Config, builder: &Builder, source: &Source, work: &Path) -> Result<()> {
    let output = match builder {
        Builder::Host { installer, .. } => installer
            .install_command(
                sh,
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
        Builder::Container { engine, image, .. } => {
            let relative = source
                .path()
                .strip_prefix(&config.root)
                .context("the requirements file is inside the repository")?;
            let run = container_run(config, image, relative, work)?;
            let mut args = match source {
                Source::Requirements { .. } => container::install_args(relative),
                // The same wheels as on the host: the runtime's platform, not the image's.
                Source::Lock(_) => container::locked_install_args(relative, config.runtime, config.arch),
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
            engine
                .run_command(sh, &run, &args)?
                .quiet()
                .ignore_status()
                .output()?
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut message = format!("the installer failed ({})", builder.installer_id());
    if let Some(package) = installer::missing_wheel(&stderr).or_else(|| installer::missing_wheel(&stdout)) {
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
    bail!("{message}\n  | {}", tail.join("\n  | "))
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
    })
}

/// Hash-based `.pyc` (PEP 552) compiled by the runtime's own Python version,
/// with source paths as they will be at run time (`/opt/python/...`).
pub fn compile_bytecode(sh: &Shell, config: &Config, builder: &Builder, work: &Path) -> Result<()> {
    let mode = config.bytecode.name();
    let runtime_dir = format!("{}/python", crate::facts::LAYER_MOUNT);
    let output = match builder {
        Builder::Host { interpreter, .. } => {
            let python = interpreter.as_ref().context("no interpreter for bytecode")?;
            let site = work.join("python");
            xshell::cmd!(
                sh,
                "{python} -m compileall -q -j 0 --invalidation-mode {mode} -s {site} -p {runtime_dir} {site}"
            )
            .quiet()
            .ignore_status()
            .output()?
        }
        Builder::Container { engine, image, .. } => {
            let site = container::python_dir();
            let args: Vec<String> = [
                "python3",
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                mode,
                "-s",
                &site,
                "-p",
                &runtime_dir,
                &site,
            ]
            .into_iter()
            .map(str::to_string)
            .collect();
            let plan_dir = work.to_path_buf();
            let run = ContainerRun {
                image: image.clone(),
                arch: config.arch,
                input_dir: plan_dir.clone(),
                workdir: container::INPUT_DIR.to_string(),
                out_dir: plan_dir,
                cache_dir: config.cache_dir().join("container"),
            };
            engine
                .run_command(sh, &run, &args)?
                .quiet()
                .ignore_status()
                .output()?
        }
    };
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
