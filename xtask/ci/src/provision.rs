//! What a fresh machine of this project's kind lacks for the tests, had by
//! `cargo xtask ci` itself: Python 3, the pinned uv, the stand-in for the
//! Lambda build image (built from Debian's packages with mmdebstrap, since
//! no registry answers), Chromium for the report's test in a browser (Debian's
//! `chromium`, also for the CORS test through `serve`), curl for the
//! session against `serve`, a container registry and skopeo for the
//! registry client's tests (Debian's `docker-registry` and `skopeo`), each
//! idempotent and silent when already there.
//! What cannot be had here is a stage to skip, counted and named.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use xtask::config::Config;
use xtask::ground::progress::Lines;
use xtask::lambda::runtime_env;
use xtask::python::container::{self, Engine};
use xtask::python::installer::Installer;
use xtask::python::installer::InstallerChoice;
use xtask::store::tools::{self, Planned, Tools};

/// The image the container tests use (`.ci/test-image.sh` builds it).
pub const TEST_IMAGE: &str = "xtask-test-python:bookworm";

/// A stage of `ci` that cannot run on this machine, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub stage: &'static str,
    pub why: String,
}

/// What the tests run with.
#[derive(Debug, Default)]
pub struct Provisioned {
    /// A folder to put first on PATH (the bootstrapped uv), if any.
    pub path_first: Option<PathBuf>,
    /// A filesystem mirror holding the hashicorp/aws provider, for
    /// validating the AWS modules offline (`TF_PROVIDER_MIRROR` of
    /// terraform/test.sh).
    pub provider_mirror: Option<PathBuf>,
    /// The runtime interface client, installed once for every test
    /// repository (`XTASK_RUNTIME_CLIENT`).
    pub runtime_client: Option<PathBuf>,
    /// The test image, when an engine answers (it may still be building).
    pub test_image: Option<Arc<TestImage>>,
    pub skipped: Vec<Skipped>,
}

/// What provisioning skips when no container engine with the test image
/// can be had: the container stages and the tests that need an engine.
pub const CONTAINER_TESTS: &str = "container tests";

/// What provisioning skips when no local registry and skopeo can be had:
/// the `needs_registry` tests.
pub const REGISTRY_TESTS: &str = "registry tests";

pub fn provision(sh: &Shell, config: &Config) -> Result<Provisioned> {
    let mut provisioned = Provisioned::default();
    if tools::which(Path::new("python3")).is_none() {
        apt_install(sh, &["python3", "python3-pip", "python3-venv"], "python3")?;
    }

    // The tests' throwaway repositories find uv on PATH instead of each
    // bootstrapping a copy: the tool's own bootstrap, once, into target/.
    let tools = Tools::load(&config.cache_dir(), true);
    let mut notes = Vec::new();
    let uv = Installer::discover(sh, &tools, &config.cache_dir(), InstallerChoice::Uv, &mut notes)
        .context("ci needs uv for the tests")?;
    tools.save()?;
    if let Planned::Ready(uv) = uv {
        // Only the bootstrapped copy: a uv already on PATH stays where it is.
        if uv.program.starts_with(config.cache_dir()) {
            provisioned.path_first = uv.program.parent().map(Path::to_path_buf);
        }
    }

    let site = runtime_env::runtime_site(sh, config, &tools, InstallerChoice::Uv, &Lines)?;
    match site.client {
        Ok(client) => provisioned.runtime_client = Some(reachable_copy(&client)?),
        Err(why) => bail!("ci needs the runtime interface client for the tests: {why}"),
    }

    let mut engine = container::planned_engine(sh, &tools);
    if matches!(engine, Planned::Ready(None)) && start_docker_daemon(sh, config) {
        engine = container::planned_engine(sh, &tools);
    }
    match engine {
        Planned::Ready(Some(engine)) => match test_image(sh, config, &engine) {
            Ok(image) => provisioned.test_image = Some(Arc::new(image)),
            Err(why) => provisioned.skipped.push(Skipped {
                stage: CONTAINER_TESTS,
                why: format!("{why:#}"),
            }),
        },
        _ => provisioned.skipped.push(Skipped {
            stage: CONTAINER_TESTS,
            why: "no container engine answers (docker or podman)".to_string(),
        }),
    }
    tools.save()?;
    if let Err(why) = chromium(sh) {
        for stage in [crate::browser::STAGE, crate::serve::CORS_STAGE] {
            provisioned.skipped.push(Skipped {
                stage,
                why: why.clone(),
            });
        }
    }
    if let Err(why) = curl(sh) {
        provisioned.skipped.push(Skipped {
            stage: crate::serve::CURL_STAGE,
            why,
        });
    }
    if let Err(why) = registry_tools(sh) {
        provisioned.skipped.push(Skipped {
            stage: REGISTRY_TESTS,
            why,
        });
    }
    if tools::which(Path::new("terraform")).is_none() {
        provisioned.skipped.push(Skipped {
            stage: "terraform",
            why: "terraform is not installed (Debian has no package for it)".to_string(),
        });
    } else {
        provisioned.provider_mirror = provider_mirror();
        if provisioned.provider_mirror.is_none() {
            let why = "no filesystem mirror holds the hashicorp/aws provider (set TF_PROVIDER_MIRROR)";
            for stage in ["terraform validate", crate::emulator::STAGE] {
                provisioned.skipped.push(Skipped {
                    stage,
                    why: why.to_string(),
                });
            }
        }
    }
    Ok(provisioned)
}

/// `dir` itself when the sandbox user of the tests' functions can reach it;
/// else (a checkout in a private folder, as root) a copy in the temporary
/// folder, so that the tests still run their functions as that user.
///
/// The copy lives in a fresh folder of the shared temporary folder with an
/// unguessable name and mode 0711: the sandbox user can cross it to the
/// copy (0755) but not list it, and no other user can pre-create, replace or
/// write anything on the way. Copies of earlier runs that have ended are
/// removed first.
fn reachable_copy(dir: &Path) -> Result<PathBuf> {
    if xtask::contain::others_reach(dir) {
        return Ok(dir.to_path_buf());
    }
    xtask::ground::atomic::sweep_private_temp_dirs(CI_COPY_PREFIX);
    let parent = xtask::ground::atomic::private_temp_dir(CI_COPY_PREFIX, 0o711)?;
    // The cache folder's name says which client and runtime this is.
    let name = dir.parent().and_then(Path::file_name);
    let copy = parent.join(name.unwrap_or("runtime-client".as_ref()));
    copy_tree(dir, &copy).with_context(|| format!("copying {} to {}", dir.display(), copy.display()))?;
    Ok(copy)
}

/// How the folders of [`reachable_copy`] begin.
const CI_COPY_PREFIX: &str = "xtask-ci-";

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(())
}

/// A filesystem mirror with the hashicorp/aws provider: `TF_PROVIDER_MIRROR`,
/// Terraform's implied local mirrors, or a folder under /opt that holds one
/// (where machines without registry access keep it).
fn provider_mirror() -> Option<PathBuf> {
    let holds_aws = |dir: &Path| dir.join("registry.terraform.io/hashicorp/aws").is_dir();
    if let Some(dir) = std::env::var_os("TF_PROVIDER_MIRROR") {
        return Some(PathBuf::from(dir)).filter(|dir| holds_aws(dir));
    }
    let mut candidates = Vec::new();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        candidates.push(home.join(".terraform.d/plugins"));
        candidates.push(home.join(".local/share/terraform/plugins"));
    }
    candidates.push(PathBuf::from("/usr/local/share/terraform/plugins"));
    candidates.push(PathBuf::from("/usr/share/terraform/plugins"));
    if let Ok(items) = std::fs::read_dir("/opt") {
        let mut under_opt: Vec<PathBuf> = items.flatten().map(|item| item.path()).collect();
        under_opt.sort();
        candidates.extend(under_opt);
    }
    candidates.into_iter().find(|dir| holds_aws(dir))
}

/// On this kind of machine the Docker daemon runs before anything else; when
/// it does not answer although dockerd is installed and we are root, start
/// it (in its own process group, so it outlives this run) and wait for it.
fn start_docker_daemon(sh: &Shell, config: &Config) -> bool {
    use std::os::unix::process::CommandExt;
    let root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    let Some(dockerd) = tools::which(Path::new("dockerd")).filter(|_| root) else {
        return false;
    };
    let log_path = config.cache_dir().join("dockerd.log");
    let _ = std::fs::create_dir_all(config.cache_dir());
    let Ok(log) = std::fs::File::create(&log_path) else {
        return false;
    };
    eprintln!(
        "ci: no container engine answers: starting dockerd (its log: {})",
        log_path.display()
    );
    let started = std::process::Command::new(dockerd)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_or(std::process::Stdio::null(), Into::into))
        .stderr(log)
        .process_group(0)
        .spawn();
    let Ok(mut daemon) = started else {
        return false;
    };
    for _ in 0..60 {
        if cmd!(sh, "docker version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            return true;
        }
        // One that exits (a daemon already runs, a bad configuration) will
        // never answer: no use waiting, and it is reaped.
        if let Ok(Some(status)) = daemon.try_wait() {
            eprintln!("ci: dockerd exited ({status}); its log: {}", log_path.display());
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    false
}

/// The test image, built once with `.ci/test-image.sh` (and mmdebstrap,
/// installed first when it is missing).
fn test_image(sh: &Shell, config: &Config, engine: &Engine) -> Result<TestImage> {
    let program = engine.program.clone();
    let present = cmd!(sh, "{program} image inspect {TEST_IMAGE}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if present {
        return Ok(TestImage::ready());
    }
    // Here, not on the build's thread: apt-get takes dpkg's lock, and
    // provisioning may install Chromium next.
    if tools::which(Path::new("mmdebstrap")).is_none() {
        apt_install(sh, &["mmdebstrap"], "mmdebstrap")?;
    }
    let script = config.root.join(".ci/test-image.sh");
    eprintln!("ci: building the test image {TEST_IMAGE} beside the first stages (about 20 s, once)");
    let build = std::thread::spawn(move || {
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg(TEST_IMAGE)
            .env("CONTAINER_ENGINE", &program)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|err| format!("starting bash {}: {err}", script.display()))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "building the test image with .ci/test-image.sh failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    });
    Ok(TestImage {
        build: Mutex::new(Some(build)),
        done: OnceLock::new(),
    })
}

/// The test image: there already, or being built on a thread of its own
/// while the stages that do not need it run. A stage that needs it waits.
#[derive(Debug)]
pub struct TestImage {
    build: Mutex<Option<JoinHandle<Result<(), String>>>>,
    done: OnceLock<Result<(), String>>,
}

impl TestImage {
    fn ready() -> TestImage {
        TestImage {
            build: Mutex::new(None),
            done: OnceLock::from(Ok(())),
        }
    }

    /// Waits for the build, once; every caller gets its answer.
    pub fn wait(&self) -> Result<(), String> {
        self.done
            .get_or_init(|| {
                let build = self
                    .build
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .take();
                match build {
                    Some(build) => build
                        .join()
                        .unwrap_or_else(|_| Err("the test image's build panicked".to_string())),
                    None => Ok(()),
                }
            })
            .clone()
    }
}

/// A Chromium for the report's test in a browser: one on PATH, else
/// Debian's `chromium` installed as root; or why there is none.
fn chromium(sh: &Shell) -> Result<(), String> {
    if crate::browser::find_chromium().is_some() {
        return Ok(());
    }
    eprintln!(
        "ci: no Chromium on PATH ({}): the report's test needs one (Debian's chromium, about 30 s, once)",
        crate::browser::CHROMIUM_NAMES.join(", ")
    );
    apt_install(sh, &["chromium"], "Chromium").map_err(|err| format!("{err:#}"))?;
    match crate::browser::find_chromium() {
        Some(_) => Ok(()),
        None => Err("apt-get installed chromium, but `chromium --version` does not answer".to_string()),
    }
}

/// curl for the session against `serve`: on PATH, else Debian's installed
/// as root; or why there is none.
fn curl(sh: &Shell) -> Result<(), String> {
    if tools::which(Path::new("curl")).is_some() {
        return Ok(());
    }
    apt_install(sh, &["curl"], "curl").map_err(|err| format!("{err:#}"))?;
    match tools::which(Path::new("curl")) {
        Some(_) => Ok(()),
        None => Err("apt-get installed curl, but it is not on PATH".to_string()),
    }
}

/// A registry to serve on 127.0.0.1 (the CNCF distribution registry,
/// Debian's `docker-registry`) and skopeo to read back what the tests push:
/// on PATH, else Debian's installed as root; or why there are none.
fn registry_tools(sh: &Shell) -> Result<(), String> {
    let missing: Vec<&str> = ["docker-registry", "skopeo"]
        .into_iter()
        .filter(|program| tools::which(Path::new(program)).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(sh, &missing, "a local registry and skopeo").map_err(|err| format!("{err:#}"))?;
    match missing
        .iter()
        .find(|program| tools::which(Path::new(program)).is_none())
    {
        Some(program) => Err(format!("apt-get installed {program}, but it is not on PATH")),
        None => Ok(()),
    }
}

/// Installs Debian packages, as root with apt-get, or says what to install.
fn apt_install(sh: &Shell, packages: &[&str], what: &str) -> Result<()> {
    let root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    if !root || tools::which(Path::new("apt-get")).is_none() {
        bail!(
            "{what} is missing: install {} (as root: apt-get install {})",
            what,
            packages.join(" ")
        );
    }
    eprintln!("ci: installing {} with apt-get", packages.join(" "));
    cmd!(sh, "apt-get update -qq")
        .quiet()
        .ignore_stdout()
        .run()
        .context("apt-get update")?;
    cmd!(sh, "apt-get install -y -qq {packages...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .quiet()
        .ignore_stdout()
        .run()
        .with_context(|| format!("apt-get install {}", packages.join(" ")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    /// As root in a private checkout, the copy the sandbox user reads is in
    /// a fresh 0711 folder with a random name: not at a fixed path another
    /// local user could pre-create or point elsewhere with a symlink.
    #[test]
    fn the_reachable_copy_is_in_a_fresh_private_folder() {
        let private = tempfile::tempdir().unwrap();
        fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let client = private.path().join("python3.11-test-client/client");
        fs::create_dir_all(client.join("awslambdaric")).unwrap();
        fs::write(client.join("awslambdaric/bootstrap.py"), "X = 1\n").unwrap();
        let fixed = std::env::temp_dir().join("xtask-ci-python3.11-test-client");
        let planted = tempfile::tempdir().unwrap();
        let _ = fs::remove_file(&fixed);
        std::os::unix::fs::symlink(planted.path(), &fixed).unwrap();

        let one = reachable_copy(&client).unwrap();
        let two = reachable_copy(&client).unwrap();
        let _ = fs::remove_file(&fixed);
        assert_ne!(one, two, "a fresh folder each time");
        assert_eq!(
            fs::read_dir(planted.path()).unwrap().count(),
            0,
            "the planted link was followed"
        );
        for copy in [&one, &two] {
            let parent = copy.parent().unwrap();
            assert_eq!(parent.parent(), Some(std::env::temp_dir().as_path()));
            assert_ne!(
                parent,
                std::env::temp_dir().join("xtask-ci-python3.11-test-client")
            );
            assert_eq!(fs::symlink_metadata(parent).unwrap().mode() & 0o7777, 0o711);
            assert_eq!(fs::metadata(copy).unwrap().mode() & 0o7777, 0o755);
            assert!(xtask::contain::others_reach(copy));
            assert_eq!(
                fs::read_to_string(copy.join("awslambdaric/bootstrap.py")).unwrap(),
                "X = 1\n"
            );
        }
        for copy in [one, two] {
            fs::remove_dir_all(copy.parent().unwrap()).unwrap();
        }
    }
}
