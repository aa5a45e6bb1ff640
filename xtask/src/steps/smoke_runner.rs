//! Where and how `smoke` imports a handler: the host's Python of the
//! runtime's version or the build image, the runtime's own boto3 emulated
//! from the cache, and the bootstrap (`py/smoke.py`) run in an environment
//! like Lambda's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use xshell::{cmd, Shell};

use crate::atomic::TempDir;
use crate::cli::InstallerChoice;
use crate::config::{BuilderChoice, Config};
use crate::error::EnvironmentError;
use crate::tools::{Planned, Tools};
// This command uses the mounts of `Engine::run_command` so: the work folder
// (`task/`, `opt/`) as its output folder, and the runtime's site-packages as
// its read-only input folder.
use crate::container::{
    ContainerRun, Engine, INPUT_DIR as CONTAINER_RUNTIME_SITE, OUT_DIR as CONTAINER_WORK,
};
use crate::facts::{self, Arch};
use crate::installer::{self, Installer};
use crate::progress::Progress;
use crate::python;

pub const SCRIPT: &str = include_str!("../../py/smoke.py");

/// The boto3 the Lambda Python runtime ships in `/var/lang/lib/python3.X/site-packages`
/// (with botocore, s3transfer, jmespath and their dependencies). Handlers import it without
/// packaging it, so the smoke test installs this pin once into the cache. The runtimes update
/// theirs every few months; only its presence and its import time matter here.
pub const RUNTIME_BOTO3: &str = "boto3==1.44.5";

/// A directory to use as the runtime's site-packages instead of installing
/// [`RUNTIME_BOTO3`]: for tests and machines without a package index. An empty
/// directory means "the runtime provides nothing".
pub const RUNTIME_SITE_VARIABLE: &str = "XTASK_RUNTIME_SITE";

/// What Lambda sets besides the function's own variables. The keys are fake:
/// creating a client at import works, calling AWS does not.
pub const LAMBDA_ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "AKIAXTASKSMOKETEST00"),
    ("AWS_SECRET_ACCESS_KEY", "xtask-smoke-test-fake-secret-key"),
    ("AWS_SESSION_TOKEN", "xtask-smoke-test-fake-session-token"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
    ("TZ", ":UTC"),
    ("PYTHONDONTWRITEBYTECODE", "1"),
];

/// Inside the build image: the Lambda runtime's own PATH, HOME and LANG.
pub const CONTAINER_BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    ("HOME", "/tmp"),
    ("LANG", "en_US.UTF-8"),
];

/// The host variables the interpreter keeps; everything else is cleared.
pub const HOST_ENV_KEPT: &[&str] = &["PATH", "HOME", "LANG"];

/// One function to import: everything decided before anything touches the disk.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionPlan {
    pub name: String,
    pub handler: String,
    /// Repository-relative, as the manifest records it.
    pub zip: String,
    /// Attached layers in Lambda's merge order: later ones overwrite earlier files.
    pub layers: Vec<LayerStep>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerStep {
    pub name: String,
    /// `None` for an external layer: only its ARN is known.
    pub zip: Option<String>,
}

/// Where the imports run, or why they cannot run on this machine.
pub enum Runner {
    Host {
        python: PathBuf,
    },
    Container {
        engine: Engine,
        image: String,
        image_id: String,
    },
    Skip(String),
}

/// The stand-in for `/var/lang/lib/python3.X/site-packages`.
pub struct RuntimeSite {
    pub dir: Option<PathBuf>,
    /// How it was had, for messages about runtime-provided modules.
    pub about: String,
}

/// What `py/smoke.py` prints.
#[derive(Debug, Default, Deserialize)]
pub struct Report {
    pub ok: bool,
    pub import_ms: Option<f64>,
    pub error: Option<String>,
    pub missing_module: Option<String>,
    pub raised_in: Option<String>,
    pub traceback: Option<String>,
}

/// With the `container` builder, the build image (its Python is the
/// runtime's); otherwise the runtime's Python on the host. A run that may
/// not probe says what it would do instead.
pub fn choose_runner(sh: &Shell, config: &Config, tools: &Tools) -> Result<Planned<Runner>> {
    let foreign = Arch::host() != Some(config.arch);
    if config.builder == BuilderChoice::Container {
        let engine = match crate::container::required_engine(sh, tools)? {
            Planned::Ready(engine) => engine,
            Planned::Pending(what) => return Ok(Planned::Pending(what)),
        };
        if let Err(why) = crate::container::can_run(config.arch) {
            return Ok(Planned::Ready(Runner::Skip(why)));
        }
        let image_id = match crate::container::required_image(sh, tools, &engine, &config.image, config.arch)?
        {
            Planned::Ready(id) => id,
            Planned::Pending(what) => return Ok(Planned::Pending(what)),
        };
        let image = config.image.clone();
        return Ok(Planned::Ready(Runner::Container {
            engine,
            image,
            image_id,
        }));
    }
    if foreign {
        return Ok(Planned::Ready(Runner::Skip(format!(
            "the functions are {} and this host is not: its Python cannot load their binaries (use --builder container with an emulator registered)",
            config.arch.name()
        ))));
    }
    // find_interpreter returns the interpreter's own path: the bootstrap runs
    // with an empty environment, where a version manager's shim would fail.
    Ok(
        match python::find_interpreter(sh, tools, config.runtime, Some(Path::new("uv"))) {
            Planned::Pending(what) => Planned::Pending(what),
            Planned::Ready(Some(python)) => Planned::Ready(Runner::Host { python }),
            Planned::Ready(None) => Planned::Ready(Runner::Skip(format!(
                "no Python {} on this host (install it, or use --builder container)",
                config.runtime.python_version()
            ))),
        },
    )
}

impl Runner {
    /// What the runner is, for the smoke nodes' keys.
    pub fn identity(&self) -> String {
        match self {
            Runner::Host { python } => format!("host {}", python.display()),
            Runner::Container { image, image_id, .. } => format!("container {image} {image_id}"),
            Runner::Skip(reason) => format!("skip: {reason}"),
        }
    }
}

/// Which stand-in for the runtime's site-packages a run uses, without
/// touching anything: for the smoke nodes' keys.
pub fn site_identity() -> String {
    match std::env::var_os(RUNTIME_SITE_VARIABLE) {
        Some(dir) => format!("{RUNTIME_SITE_VARIABLE}={}", PathBuf::from(dir).display()),
        None => RUNTIME_BOTO3.to_string(),
    }
}

/// The runtime's own site-packages: [`RUNTIME_SITE_VARIABLE`] if set, else
/// [`RUNTIME_BOTO3`] installed once into the cache. When that install fails
/// (offline), the smoke test goes on without it and says so once.
pub fn runtime_site(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
) -> Result<RuntimeSite> {
    if let Some(dir) = std::env::var_os(RUNTIME_SITE_VARIABLE) {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            let message = format!("{RUNTIME_SITE_VARIABLE}={} is not a directory", dir.display());
            return Err(EnvironmentError::new(message).into());
        }
        let about = format!("{RUNTIME_SITE_VARIABLE}={} lacks it", dir.display());
        return Ok(RuntimeSite {
            dir: Some(dir),
            about,
        });
    }
    let name = format!(
        "{}-{}-{}",
        config.runtime.name,
        config.arch.name(),
        RUNTIME_BOTO3.replace("==", "-")
    );
    let dest = config.cache_dir().join("runtime").join(name);
    let site = dest.join("site-packages");
    if !site.is_dir() {
        progress.note(&format!("smoke: installing the runtime's {RUNTIME_BOTO3} (once)"));
        if let Err(err) = install_runtime_site(sh, config, tools, choice, progress, &dest) {
            let about = format!("installing {RUNTIME_BOTO3} failed: {err:#}");
            progress.note(&format!(
                "smoke: the runtime's boto3 is not emulated ({about}); handlers that import it will fail"
            ));
            return Ok(RuntimeSite { dir: None, about });
        }
    }
    let about = format!("{RUNTIME_BOTO3} is installed in {}", site.display());
    Ok(RuntimeSite {
        dir: Some(site),
        about,
    })
}

fn install_runtime_site(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
    dest: &Path,
) -> Result<()> {
    let mut notes = Vec::new();
    let installer = Installer::discover(sh, tools, &config.cache_dir(), choice, &mut notes);
    for note in notes {
        progress.note(&note);
    }
    let Planned::Ready(installer) = installer? else {
        bail!("no installer could be had");
    };
    fs::create_dir_all(dest.parent().context("the runtime cache folder")?)?;
    let temp = TempDir::beside(dest)?;
    let requirements = temp.path().join("requirements.txt");
    fs::write(&requirements, format!("{RUNTIME_BOTO3}\n"))?;
    let site = temp.path().join("site-packages");
    let (runtime, arch, cache_dir) = (config.runtime, config.arch, config.cache_dir());
    let output = installer
        .install_command(sh, &requirements, &site, runtime, arch, &cache_dir)
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {}", installer.id()))?;
    if !output.status.success() {
        bail!("{}", installer::last_lines(&output.stderr, 3).join(" | "));
    }
    // The runtime ships its boto3 compiled; from source its import would count
    // several times over against the budget. Best effort.
    if let Planned::Ready(Some(python)) = python::find_interpreter(sh, tools, config.runtime, None) {
        let _ = cmd!(sh, "{python} -m compileall -q -j 0 {site}")
            .quiet()
            .ignore_status()
            .output();
    }
    temp.persist(dest)
}

/// Lays out one function in a temporary folder, as Lambda would, and imports
/// its handler there. Returns the report and notes on what was left out.
/// Runs `py/smoke.py` on the laid-out `work` folder (`task/`, `opt/`) in a
/// fresh interpreter that sees Lambda's environment and nothing else.
pub fn run_bootstrap(
    sh: &Shell,
    config: &Config,
    runner: &Runner,
    site: &RuntimeSite,
    plan: &FunctionPlan,
    work: &Path,
) -> Result<Output> {
    let timeout_s = facts::INIT_TIMEOUT_S.max(config.import_budget_ms.div_ceil(1000) + 1);
    // After `-c SCRIPT`: TASK_ROOT OPT_ROOT RUNTIME_SITE HANDLER PYTHON_VERSION TIMEOUT_S.
    let script_args = |task: String, opt: String, site: &str| -> Vec<String> {
        let tail = [
            &plan.handler,
            &config.runtime.python_version(),
            &timeout_s.to_string(),
        ]
        .map(String::from);
        let head = ["-I", "-S", "-B", "-c", SCRIPT].map(String::from);
        head.into_iter()
            .chain([task, opt, site.to_string()])
            .chain(tail)
            .collect()
    };
    let lambda_env = |task_root: &str| {
        let own = [
            ("AWS_LAMBDA_FUNCTION_NAME", plan.name.clone()),
            ("AWS_EXECUTION_ENV", format!("AWS_Lambda_{}", config.runtime.name)),
            ("LAMBDA_TASK_ROOT", task_root.to_string()),
            ("_HANDLER", plan.handler.clone()),
        ];
        let common = LAMBDA_ENV.iter().map(|(name, value)| (*name, value.to_string()));
        common.chain(own).collect::<Vec<_>>()
    };
    let output = match runner {
        Runner::Host { python } => {
            let task = work.join("task").display().to_string();
            let opt = work.join("opt").display().to_string();
            let site = site
                .dir
                .as_ref()
                .map(|dir| dir.display().to_string())
                .unwrap_or_default();
            let args = script_args(task.clone(), opt, &site);
            let mut command = cmd!(sh, "{python} {args...}").env_clear().quiet().ignore_status();
            for name in HOST_ENV_KEPT {
                if let Some(value) = std::env::var_os(name) {
                    command = command.env(name, value);
                }
            }
            command.envs(lambda_env(&task)).output()?
        }
        Runner::Container { engine, image, .. } => {
            // Without a runtime site, an empty folder stands in for the mount.
            let empty = work.join("no-runtime-site");
            fs::create_dir_all(&empty)?;
            let run = ContainerRun {
                image: image.clone(),
                arch: config.arch,
                input_dir: site.dir.clone().unwrap_or(empty),
                workdir: CONTAINER_RUNTIME_SITE.to_string(),
                out_dir: work.to_path_buf(),
                cache_dir: config.cache_dir().join("container"),
            };
            fs::create_dir_all(&run.cache_dir)?;
            let task = format!("{CONTAINER_WORK}/task");
            let site = if site.dir.is_some() {
                CONTAINER_RUNTIME_SITE
            } else {
                ""
            };
            // `env -i`: Lambda's environment and nothing of the image's.
            let mut args = vec!["env".to_string(), "-i".to_string()];
            let base = CONTAINER_BASE_ENV
                .iter()
                .map(|(name, value)| (*name, value.to_string()));
            args.extend(
                base.chain(lambda_env(&task))
                    .map(|(name, value)| format!("{name}={value}")),
            );
            args.push("python3".to_string());
            args.extend(script_args(task, format!("{CONTAINER_WORK}/opt"), site));
            engine
                .run_command(sh, &run, &args)?
                .quiet()
                .ignore_status()
                .output()?
        }
        Runner::Skip(_) => unreachable!("a skipped run imports nothing"),
    };
    Ok(output)
}

/// The JSON line of `py/smoke.py`; when there is none, what the process left.
pub fn parse_report(output: &Output) -> Report {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|line| line.starts_with('{'));
    if let Some(report) = line.and_then(|line| serde_json::from_str::<Report>(line).ok()) {
        return report;
    }
    let mut error = format!("the interpreter exited ({}) without reporting", output.status);
    let tail = installer::last_lines(&output.stderr, 6);
    if !tail.is_empty() {
        error = format!("{error}: {}", tail.join(" | "));
    }
    Report {
        error: Some(error),
        ..Report::default()
    }
}
