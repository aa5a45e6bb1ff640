//! An image function end to end: a copy of the example application in
//! which `cors` ships as a container image (`package = "image"`) on a
//! Lambda-like base in the run's own registry (see `registry`), built with
//! the kept xtask binary. The emulator stage deploys that copy's dist/ (so
//! that Terraform meets an image function), and the stage of this file
//! pushes it to the registry, reads it back with skopeo, pulls it with
//! docker and runs it as Lambda runs an image, against a Runtime API that
//! hands it one of its sample events.
//!
//! `cors`: it attaches no layer, so its image is the base and one small
//! layer of its handler, and it needs nothing but the standard library and
//! `ALLOWED_ORIGINS` to answer (`users` would need the shared layer and a
//! DynamoDB table).

use std::cell::RefCell;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use xshell::{cmd, Shell};

use xtask::config::manifest::{ImageEntry, Manifest};
use xtask::config::Config;
use xtask::contain::reaper::{self, Owned};
use xtask::steps::image::BaseLock;
use xtask::store::registry::Reference;

use crate::registry::{self, docker_run, Registry};

/// The stage's name in `ci`.
pub const STAGE: &str = "images: build, push, pull, run";

/// The function of the copy that ships as an image.
pub const FUNCTION: &str = "cors";

/// The sample event it is run with (`lambdas/events/cors/`).
const EVENT: &str = "preflight_allowed";

/// Where the emulator stage's deployment expects the images: ECR in moto's
/// account and region (`terraform/modules/ecr` refuses other registries
/// and other accounts); envs/dev's name prefix as the path.
pub const ECR_REPOSITORY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/lambda-app-dev";

/// The copy, and the registry its image function's base is in: made by
/// the first stage that needs it, kept for the others of the run.
pub struct ImageApp {
    root: PathBuf,
    /// The configuration as the repository has it.
    cargo_toml: String,
    base: String,
    xtask: PathBuf,
    uv_cache: PathBuf,
    /// What provisioning gave the harness's shell (PATH with uv first, the
    /// runtime interface client): the copy's commands get it too.
    provided: Vec<(&'static str, std::ffi::OsString)>,
    /// The image's digest as first built: another repository to push to
    /// must not change it.
    digest: RefCell<Option<String>>,
    /// Dropped last: the registry runs as long as the copy is used.
    registry: Registry,
}

impl ImageApp {
    /// Starts the registry, pushes the base into it, copies the
    /// application (its `target/`, and with it the store, is kept from run
    /// to run) and pins the base in the copy's images.lock.
    pub fn prepare(config: &Config, xtask: &Path, harness: &Shell) -> Result<ImageApp> {
        let provided: Vec<(&'static str, std::ffi::OsString)> =
            ["PATH", xtask::lambda::runtime_env::RUNTIME_CLIENT_VARIABLE]
                .into_iter()
                .filter_map(|name| Some((name, harness.var_os(name)?)))
                .collect();
        let client = harness
            .var_os(xtask::lambda::runtime_env::RUNTIME_CLIENT_VARIABLE)
            .map(PathBuf::from)
            .context(
                "XTASK_RUNTIME_CLIENT is not set: provisioning sets it to the runtime interface client",
            )?;
        let registry = Registry::start(config)?;
        eprintln!("ci: a registry answers on {}", registry.host());
        let digest = registry
            .push_lambda_base(config, &client)
            .context("building and pushing the Lambda-like base image")?;
        let base = format!("{}/{}", registry.host(), registry::BASE);
        eprintln!("ci: {base} is {digest}");

        let root = config.cache_dir().join("ci-images").join("app");
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        for item in fs::read_dir(&root)? {
            let item = item?;
            if item.file_name() != "target" {
                let path = item.path();
                if item.file_type()?.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                }
                .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        let sh = Shell::new()?;
        crate::checks::copy_app(&sh, config, &root, &[])?;
        let cargo_toml = fs::read_to_string(root.join("Cargo.toml"))?;

        // The pin `cargo xtask lock` would write, without the network that
        // lock's resolution of the dependency profiles needs.
        let reference = Reference::parse(&base).map_err(anyhow::Error::msg)?;
        let mut lock = BaseLock::default();
        lock.bases.insert(
            reference.to_string(),
            [(config.arch.name().to_string(), digest)].into(),
        );
        lock.write(&root)?;
        Ok(ImageApp {
            root,
            cargo_toml,
            base,
            xtask: xtask.to_path_buf(),
            uv_cache: config.cache_dir().join("uv"),
            provided,
            digest: RefCell::new(None),
            registry,
        })
    }

    /// The copy's configuration with `cors` an image function on the base,
    /// pushed to `repository`.
    fn configure(&self, repository: &str) -> Result<()> {
        let header = format!("[workspace.metadata.lambda.functions.{FUNCTION}]\n");
        ensure!(
            self.cargo_toml.contains(&header),
            "Cargo.toml has no {} table to make an image function of",
            header.trim()
        );
        let keys = format!(
            "{header}package = \"image\"\nimage_base = \"{}\"\nimage_repository = \"{repository}\"\n",
            self.base
        );
        let text = self.cargo_toml.replacen(&header, &keys, 1);
        fs::write(self.root.join("Cargo.toml"), text).context("writing the copy's Cargo.toml")
    }

    /// A shell at the copy's root, its store in its own target/ (whatever
    /// `CARGO_TARGET_DIR` says), uv's cache shared with the repository's.
    fn shell(&self) -> Result<Shell> {
        let sh = Shell::new()?;
        sh.change_dir(&self.root);
        for (name, value) in &self.provided {
            sh.set_var(name, value);
        }
        sh.set_var("CARGO_TARGET_DIR", self.root.join("target"));
        sh.set_var("UV_CACHE_DIR", &self.uv_cache);
        Ok(sh)
    }

    /// `cargo xtask build` of the copy with `cors` pushed to `repository`:
    /// its dist/.
    pub fn build(&self, repository: &str) -> Result<PathBuf> {
        self.configure(repository)?;
        let (sh, xtask) = (self.shell()?, &self.xtask);
        cmd!(sh, "{xtask} build --builder host --quiet").run()?;
        let image = self.image()?;
        self.same_digest(&image, repository)?;
        eprintln!(
            "ci: the copy's `{FUNCTION}` is image {} on {} ({} layers, {} bytes unpacked)",
            image.digest,
            image.base,
            image.layers.len(),
            image.unpacked_bytes
        );
        Ok(self.root.join("dist"))
    }

    /// The image is the same whatever repository it goes to.
    fn same_digest(&self, image: &ImageEntry, repository: &str) -> Result<()> {
        let mut digest = self.digest.borrow_mut();
        match digest.as_deref() {
            Some(first) => ensure!(
                first == image.digest,
                "function `{FUNCTION}`: built {} for {repository}, {first} before for another repository: the repository changed the image",
                image.digest
            ),
            None => *digest = Some(image.digest.clone()),
        }
        Ok(())
    }

    fn manifest(&self) -> Result<Manifest> {
        let path = self.root.join("dist/manifest.json");
        serde_json::from_slice(&fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
            .with_context(|| format!("parsing {}", path.display()))
    }

    /// `cors`'s entry in the copy's manifest: an image function's.
    fn image(&self) -> Result<ImageEntry> {
        let manifest = self.manifest()?;
        let entry = manifest
            .functions
            .get(FUNCTION)
            .with_context(|| format!("the copy's manifest has no function `{FUNCTION}`"))?;
        ensure!(
            entry.package_type == "Image" && entry.layers.is_empty(),
            "function `{FUNCTION}`: package_type {:?} with layers {:?} in the copy's manifest, not an image function's",
            entry.package_type,
            entry.layers
        );
        entry
            .image
            .clone()
            .with_context(|| format!("function `{FUNCTION}`: no image in the copy's manifest"))
    }
}

/// The stage: `push` to the run's registry, the digest there read back
/// with skopeo, then `docker pull` and `docker run` as Lambda runs an
/// image, and the function's answer to one of its sample events.
pub fn build_push_pull_run(app: &ImageApp, config: &Config) -> Result<()> {
    let repository = format!("{}/lambda-app-dev", app.registry.host());
    app.build(&repository)?;
    let (sh, xtask) = (app.shell()?, &app.xtask);
    cmd!(sh, "{xtask} push {FUNCTION}").run()?;
    let image = app.image()?;
    let expected = format!("{repository}/{FUNCTION}@{}", image.digest);
    let uri = image.uri.clone().unwrap_or_default();
    ensure!(
        uri == expected,
        "function `{FUNCTION}`: push recorded image.uri {uri:?}, expected {expected}"
    );

    let inspected = Command::new("skopeo")
        .args(["inspect", "--no-tags", "--tls-verify=false"])
        .arg(format!("docker://{uri}"))
        .stdin(Stdio::null())
        .output()
        .context("starting skopeo")?;
    ensure!(
        inspected.status.success(),
        "skopeo inspect {uri} failed ({}): {}\nthe registry's log:\n{}",
        inspected.status,
        String::from_utf8_lossy(&inspected.stderr).trim(),
        app.registry.log()
    );
    let inspected: Value = serde_json::from_slice(&inspected.stdout).context("reading skopeo inspect")?;
    ensure!(
        inspected["Digest"] == image.digest.as_str(),
        "the registry holds {} as {}, the manifest says {}",
        uri,
        inspected["Digest"],
        image.digest
    );
    eprintln!("ci: skopeo reads {uri} back with the manifest's digest");

    let event_path = config
        .root
        .join("lambdas/events")
        .join(FUNCTION)
        .join(format!("{EVENT}.json"));
    let event =
        fs::read_to_string(&event_path).with_context(|| format!("reading {}", event_path.display()))?;
    let expect_path = config
        .root
        .join("lambdas/events")
        .join(FUNCTION)
        .join("expect.json");
    let expect: Value = serde_json::from_slice(&fs::read(&expect_path)?)
        .with_context(|| format!("parsing {}", expect_path.display()))?;
    let status = expect[EVENT]
        .as_u64()
        .with_context(|| format!("{} has no status for {EVENT}", expect_path.display()))?;
    let parsed: Value = serde_json::from_str(&event)?;
    let origin = parsed["headers"]["origin"]
        .as_str()
        .with_context(|| format!("{} has no origin header", event_path.display()))?
        .to_string();

    docker_run(&["pull", "--quiet", &uri])?;
    let answer = run_as_lambda(config, &uri, &event, &[("ALLOWED_ORIGINS", &origin)]);
    let _ = docker_run(&["rmi", &uri]);
    let answer = answer?;
    let response: Value = serde_json::from_str(&answer)
        .with_context(|| format!("the function's answer is not JSON: {answer}"))?;
    ensure!(
        response["statusCode"] == status
            && response["headers"]["Access-Control-Allow-Origin"] == origin.as_str(),
        "function `{FUNCTION}` in its image answered {EVENT} with {answer}, expected status {status} allowing {origin}"
    );
    eprintln!(
        "ci: {uri} pulled and run as Lambda runs it (read-only, /tmp, user 993): `{FUNCTION}` answered {EVENT} with {status}"
    );
    Ok(())
}

/// Runs `uri` with docker as Lambda runs an image (read-only, a writable
/// /tmp, an unprivileged user) against a one-event Runtime API: the
/// handler's answer.
fn run_as_lambda(config: &Config, uri: &str, event: &str, env: &[(&str, &str)]) -> Result<String> {
    let dir = config.cache_dir().join("ci").join("image-run");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let answer = dir.join("answer");
    let mut api = Command::new("python3")
        .args(["-I", "-c", ONE_EVENT_RUNTIME_API])
        .arg(event)
        .arg(&answer)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("starting the one-event Runtime API (python3)")?;
    let _api_watched = reaper::watch(Owned::Tree(api.id()));
    // The port the kernel gave it, its first line: no other server can
    // have taken it between a probe and the bind.
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(api.stdout.take().context("the Runtime API's output")?),
        &mut first,
    )?;
    let port: u16 = first
        .trim()
        .parse()
        .with_context(|| format!("the one-event Runtime API printed no port: {first:?}"))?;
    let name = format!("xtask-ci-image-{}", std::process::id());
    let owned = Owned::Container("docker".to_string(), name.clone());
    let _container_watched = reaper::watch(owned.clone());
    let mut run = Command::new("docker");
    run.args(["run", "--rm", "--name", &name, "--network", "host", "--read-only"])
        .args(["--tmpfs", "/tmp", "--user", "993:993"])
        .args(["--env", &format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}")]);
    for (key, value) in env {
        run.args(["--env", &format!("{key}={value}")]);
    }
    let log = dir.join("container.log");
    let log_file = fs::File::create(&log)?;
    let mut container = run
        .arg(uri)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("starting docker run")?;
    // The API ends once it has the answer; a container that exits first
    // (a crash) leaves it a moment for an answer in flight, then ends it.
    let mut exited_at = None;
    let served = loop {
        if let Some(status) = api.try_wait()? {
            break status;
        }
        match exited_at {
            None if container.try_wait()?.is_some() => exited_at = Some(Instant::now()),
            Some(at) if at.elapsed() > Duration::from_secs(3) => {
                reaper::end(&Owned::Tree(api.id()));
                break api.wait()?;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    reaper::end(&owned);
    let _ = container.wait();
    let said = fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        served.success(),
        "the function in {uri} never answered the Runtime API; the container said:\n{said}"
    );
    let text = fs::read_to_string(&answer).with_context(|| format!("reading {}", answer.display()))?;
    ensure!(
        !text.starts_with("error "),
        "the function in {uri} failed: {text}\nthe container said:\n{said}"
    );
    let _ = fs::remove_dir_all(&dir);
    Ok(text)
}

/// A Runtime API that hands out one event and keeps the answer (the image
/// tests run the same one).
const ONE_EVENT_RUNTIME_API: &str = include_str!("../../tests/fixtures/one-event-runtime-api.py");
