//! What a function runs on outside Lambda: the host's Python of the
//! runtime's version or the build image ([`Runner`]), the runtime's own
//! boto3 and AWS's runtime interface client installed once into the cache
//! ([`RuntimeSite`]), and the variables Lambda sets.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::Shell;

use crate::config::{BuilderChoice, Config, RunnerChoice};
use crate::facts::{self, Arch};
use crate::ground::atomic::TempDir;
use crate::ground::error::EnvironmentError;
use crate::ground::progress::Progress;
use crate::python::container::Engine;
use crate::python::installer::InstallerChoice;
use crate::python::installer::{self, Installer, Source};
use crate::python::interpreter;
use crate::store::tools::{Planned, Tools};
use crate::store::user_cache::UserCache;

/// Starts a function as the runtime's bootstrap does, then hands over to
/// the runtime interface client.
pub const SCRIPT: &str = include_str!("../../py/bootstrap.py");

/// A directory to use as the runtime's site-packages instead of installing
/// [`facts::RUNTIME_BOTO3`]: for tests and machines without a package index. An empty
/// directory means "the runtime provides nothing".
pub const RUNTIME_SITE_VARIABLE: &str = "XTASK_RUNTIME_SITE";

/// A directory holding the runtime interface client installed for a
/// runtime, used instead of installing it into this repository's cache for
/// the runtime whose extension it holds (`cargo xtask ci` prepares one for
/// all the tests' repositories).
pub const RUNTIME_CLIENT_VARIABLE: &str = "XTASK_RUNTIME_CLIENT";

/// What Lambda sets besides the function's own variables and those that
/// name it. The keys are fake: creating a client at import works, calling
/// AWS does not (unless `AWS_ENDPOINT_URL` points at a local fake).
pub const LAMBDA_ENV: &[(&str, &str)] = &[
    ("AWS_REGION", facts::LOCAL_REGION),
    ("AWS_DEFAULT_REGION", facts::LOCAL_REGION),
    ("AWS_ACCESS_KEY_ID", "AKIAXTASKSMOKETEST00"),
    ("AWS_SECRET_ACCESS_KEY", "xtask-local-fake-secret-key"),
    ("AWS_SESSION_TOKEN", "xtask-local-fake-session-token"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
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

/// One function to start: everything decided before anything touches the disk.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionPlan {
    pub name: String,
    pub handler: String,
    /// Repository-relative, as the manifest records it.
    pub zip: String,
    /// Attached layers in Lambda's merge order: later ones overwrite earlier files.
    pub layers: Vec<LayerStep>,
    /// What Lambda runs it with, as the manifest records it for Terraform.
    pub memory_mb: u64,
    /// The function's variables from `Cargo.toml`, set after Lambda's own.
    pub environment: Vec<(String, String)>,
    /// An image function's own image layers (bottom to top, the base's
    /// left out): its `/opt` and `/var/task` are unpacked from them instead
    /// of from the ZIPs.
    pub image_layers: Vec<ImageLayerStep>,
    /// An image function's image: its layout (repository-relative) and
    /// manifest digest, what the container runner loads and runs whole.
    pub image: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerStep {
    pub name: String,
    /// `None` for an external layer: only its ARN is known.
    pub zip: Option<String>,
    /// The ZIP's sha256, as the manifest records it.
    pub sha256: Option<String>,
}

/// One of an image function's own image layers.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLayerStep {
    /// Repository-relative: a blob of the image's layout.
    pub blob: String,
    pub digest: String,
    /// The function's own layer (its `/var/task`), not a layer's `/opt`.
    pub task: bool,
}

/// Where the imports run, or why they cannot run on this machine.
#[derive(Clone)]
pub enum Runner {
    Host {
        /// The real binary (see `interpreter::find_interpreter`).
        python: PathBuf,
        /// Its implementation and full version, for the smoke nodes' keys.
        version: String,
    },
    Container {
        engine: Engine,
        image: String,
        image_id: String,
    },
    Skip(String),
}

/// The stand-ins for what the Python runtime brings: its site-packages
/// (boto3) and `/var/runtime` (the runtime interface client).
#[derive(Clone)]
pub struct RuntimeSite {
    pub dir: Option<PathBuf>,
    /// How the site was had, for messages about runtime-provided modules.
    pub about: String,
    /// `Err` says why no runtime interface client can run here.
    pub client: Result<PathBuf, String>,
}

/// With the `container` builder or `--runner container`, the build image
/// (its Python is the runtime's); otherwise the runtime's Python on the host. A run that may
/// not probe says what it would do instead.
pub fn choose_runner(sh: &Shell, config: &Config, tools: &Tools) -> Result<Planned<Runner>> {
    let foreign = Arch::host() != Some(config.arch);
    let in_container = match config.runner {
        RunnerChoice::FollowBuilder => config.builder == BuilderChoice::Container,
        RunnerChoice::Container => true,
        RunnerChoice::Host => false,
    };
    if in_container {
        let engine = match crate::python::container::required_engine(sh, tools)? {
            Planned::Ready(engine) => engine,
            Planned::Pending(what) => return Ok(Planned::Pending(what)),
        };
        if let Err(why) = crate::python::container::can_run(config.arch) {
            return Ok(Planned::Ready(Runner::Skip(why)));
        }
        let image_id =
            match crate::python::container::required_image(sh, tools, &engine, &config.image, config.arch)? {
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
        match interpreter::find_interpreter(sh, tools, config.runtime, Some(Path::new("uv"))) {
            Planned::Pending(what) => Planned::Pending(what),
            Planned::Ready(Some(python)) => match interpreter::full_version(sh, tools, &python) {
                Planned::Ready(version) => Planned::Ready(Runner::Host { python, version }),
                Planned::Pending(what) => Planned::Pending(what),
            },
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
            Runner::Host { python, version } => format!("host {} {version}", python.display()),
            Runner::Container { image, image_id, .. } => format!("container {image} {image_id}"),
            Runner::Skip(reason) => format!("skip: {reason}"),
        }
    }
}

/// Which stand-ins for the runtime's site-packages and its runtime
/// interface client a run uses, without touching anything: for the smoke
/// nodes' keys.
pub fn site_identity(runtime: facts::Runtime) -> String {
    let site = match std::env::var_os(RUNTIME_SITE_VARIABLE) {
        Some(dir) => format!("{RUNTIME_SITE_VARIABLE}={}", PathBuf::from(dir).display()),
        None => facts::RUNTIME_BOTO3.to_string(),
    };
    let client = match given_client(runtime) {
        Some(dir) => format!("{RUNTIME_CLIENT_VARIABLE}={}", dir.display()),
        None => facts::runtime_interface_client(runtime).to_string(),
    };
    format!("{site}, {client}")
}

/// The runtime site `runner` uses: none for a runner that cannot run here
/// (its client is the reason), else [`runtime_site`].
pub fn site_for(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
    runner: &Runner,
) -> Result<RuntimeSite> {
    match runner {
        Runner::Skip(reason) => Ok(RuntimeSite {
            dir: None,
            about: String::new(),
            client: Err(reason.clone()),
        }),
        _ => runtime_site(sh, config, tools, choice, progress),
    }
}

/// The runtime's own site-packages ([`RUNTIME_SITE_VARIABLE`] if set, else
/// [`facts::RUNTIME_BOTO3`] installed once into the cache; when that
/// install fails, offline, runs go on without it and say so once) and its
/// runtime interface client ([`RUNTIME_CLIENT_VARIABLE`] if set, else
/// installed once into the cache; without it nothing can run).
pub fn runtime_site(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
) -> Result<RuntimeSite> {
    let client = runtime_client(sh, config, tools, choice, progress)?;
    if let Some(dir) = std::env::var_os(RUNTIME_SITE_VARIABLE) {
        let dir = given_dir(RUNTIME_SITE_VARIABLE, dir)?;
        let about = format!("{RUNTIME_SITE_VARIABLE}={} lacks it", dir.display());
        return Ok(RuntimeSite {
            dir: Some(dir),
            about,
            client,
        });
    }
    let boto3 = facts::RUNTIME_BOTO3;
    match cached_install(sh, config, tools, choice, progress, boto3) {
        Ok(site) => Ok(RuntimeSite {
            about: format!("{boto3} is installed in {}", site.display()),
            dir: Some(site),
            client,
        }),
        Err(err) => {
            let about = format!("installing {boto3} failed: {err:#}");
            progress.note(&format!(
                "the runtime's boto3 is not emulated ({about}); handlers that import it will fail"
            ));
            Ok(RuntimeSite {
                dir: None,
                about,
                client,
            })
        }
    }
}

/// [`RUNTIME_CLIENT_VARIABLE`]'s folder when it holds the client's
/// extension for `runtime` (`runtime_client.cpython-311-…so`).
fn given_client(runtime: facts::Runtime) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(RUNTIME_CLIENT_VARIABLE)?);
    let tag = format!("runtime_client.cpython-{}{}-", runtime.python.0, runtime.python.1);
    let holds = fs::read_dir(&dir)
        .ok()?
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().starts_with(&tag));
    holds.then_some(dir)
}

fn given_dir(variable: &str, dir: std::ffi::OsString) -> Result<PathBuf> {
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        let message = format!("{variable}={} is not a directory", dir.display());
        return Err(EnvironmentError::new(message).into());
    }
    Ok(dir)
}

/// The runtime interface client, or why there is none for this runtime.
fn runtime_client(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
) -> Result<Result<PathBuf, String>> {
    if let Some(dir) = std::env::var_os(RUNTIME_CLIENT_VARIABLE) {
        given_dir(RUNTIME_CLIENT_VARIABLE, dir)?;
    }
    if let Some(dir) = given_client(config.runtime) {
        return Ok(Ok(dir));
    }
    let client = facts::runtime_interface_client(config.runtime);
    Ok(cached_install(sh, config, tools, choice, progress, client)
        .map_err(|err| format!("installing {client} failed: {err:#}")))
}

/// Installs what [`runtime_site`] would install into the cache (the
/// runtime's boto3 and its runtime interface client, where no variable
/// names them), now: a run starts this beside the layers, so its smoke
/// tests find them ready. What fails here is said again by the smoke tests.
pub fn prefetch(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
) {
    if std::env::var_os(RUNTIME_SITE_VARIABLE).is_none() {
        let _ = cached_install(sh, config, tools, choice, progress, facts::RUNTIME_BOTO3);
    }
    if std::env::var_os(RUNTIME_CLIENT_VARIABLE).is_none() {
        let client = facts::runtime_interface_client(config.runtime);
        let _ = cached_install(sh, config, tools, choice, progress, client);
    }
}

/// `requirement` installed for the runtime's platform into
/// `runtime/<runtime>-<arch>-<name>-<version>/site-packages` of the cache
/// every repository of the user shares (else of `target/lambda`), once: one install at a time in a run, so that the prefetch and the
/// smoke tests never install the same thing twice.
fn cached_install(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
    requirement: &str,
) -> Result<PathBuf> {
    let name = format!(
        "{}-{}-{}",
        config.runtime.name,
        config.arch.name(),
        requirement.replace("==", "-")
    );
    // In the cache every repository of the user shares, where there is one:
    // a fresh clone on a used machine installs nothing.
    let root = match UserCache::locate() {
        Ok(Some(cache)) => cache.dir,
        _ => config.cache_dir(),
    };
    let dest = root.join(crate::store::user_cache::RUNTIME).join(&name);
    let site = dest.join("site-packages");
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !site.is_dir() {
        progress.note(&format!("installing the runtime's {requirement} (once)"));
        install_runtime_site(sh, config, tools, choice, progress, &dest, requirement)?;
    }
    // The sandbox user that runs functions may not reach the user's cache
    // (a private home): the repository then gets the install as hard links
    // under target/lambda/runtime/, where it reaches what the layers are.
    let local = config
        .cache_dir()
        .join(crate::store::user_cache::RUNTIME)
        .join(&name);
    if local == dest || crate::contain::sandbox_reaches(&site) {
        return Ok(site);
    }
    if !local.join("site-packages").is_dir() {
        fs::create_dir_all(local.parent().context("the runtime folder")?)?;
        let temp = TempDir::beside(&local)?;
        crate::ground::atomic::link_tree(&dest, temp.path())?;
        temp.persist_unless_there(&local)?;
    }
    Ok(local.join("site-packages"))
}

fn install_runtime_site(
    sh: &Shell,
    config: &Config,
    tools: &Tools,
    choice: InstallerChoice,
    progress: &dyn Progress,
    dest: &Path,
    requirement: &str,
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
    fs::write(&requirements, format!("{requirement}\n"))?;
    let site = temp.path().join("site-packages");
    let (runtime, arch, cache_dir) = (config.runtime, config.arch, config.cache_dir());
    let output = installer
        .install_command(
            sh,
            &Source::requirements(requirements),
            &site,
            runtime,
            arch,
            &cache_dir,
        )
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {}", installer.id()))?;
    if !output.status.success() {
        bail!("{}", installer::last_lines(&output.stderr, 3).join(" | "));
    }
    // The runtime ships its packages compiled; from source their import would
    // count several times over against the budget. Best effort.
    // Contained as the layers' compilation is: it reads third-party code.
    if let Planned::Ready(Some(python)) = interpreter::find_interpreter(sh, tools, config.runtime, None) {
        let contained = crate::contain::Contained::as_invoker(temp.path())?;
        let mut command = contained.command(&python);
        command
            .args(interpreter::TOOL_FLAGS)
            .args(["-m", "compileall", "-q", "-j", "0"])
            .arg(&site);
        let _ = contained.output(command, None);
    }
    // Another repository's run may have put the same install there first:
    // theirs stays (it may be in use), ours goes.
    temp.persist_unless_there(dest)
}
