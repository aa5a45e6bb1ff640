//! A container registry for the run: Debian's `docker-registry` (the CNCF
//! distribution registry) serving a folder of the tool's cache on a free
//! port of 127.0.0.1, started by the first stage that needs it and killed
//! when the run ends (or is interrupted); and in it a stand-in for
//! Lambda's Python base image, built from `xtask/tests/fixtures/lambda-base`
//! (the test image with AWS's runtime interface client) without a network.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use xtask::config::Config;
use xtask::contain::reaper::{self, Owned, Watched};

use crate::net::{answers, free_port};

/// How long the registry may take to answer after it was started.
const START: Duration = Duration::from_secs(30);

/// The base image's repository and tag in the registry.
pub const BASE: &str = "lambda/python:3.11";

/// The base image's name in docker between runs.
const LOCAL_BASE: &str = "xtask-ci-lambda-base:3.11";

/// The fixture the base image is built from, from the repository root.
const BASE_FIXTURE: &str = "xtask/tests/fixtures/lambda-base";

/// `docker-registry serve` on 127.0.0.1; killed and waited for when
/// dropped, and on SIGINT/SIGTERM.
pub struct Registry {
    child: Child,
    port: u16,
    dir: PathBuf,
    _watched: Watched,
}

impl Registry {
    /// Starts the registry with its storage (emptied first) and log under
    /// `target/lambda/ci/registry/`, and waits until it answers.
    pub fn start(config: &Config) -> Result<Registry> {
        let program = xtask::store::tools::which(Path::new("docker-registry"))
            .context("docker-registry is not on PATH (apt-get install docker-registry; provisioning does)")?;
        let dir = config.cache_dir().join("ci").join("registry");
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let storage = dir.join("storage");
        fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
        let port = free_port()?;
        let config_path = dir.join("config.yml");
        fs::write(
            &config_path,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: xtask-ci\n",
                storage.display()
            ),
        )
        .with_context(|| format!("writing {}", config_path.display()))?;
        let log_path = dir.join("registry.log");
        let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(program)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own group: an interrupted run ends it through the reaper.
            .process_group(0)
            .spawn()
            .context("starting docker-registry serve")?;
        let watched = reaper::watch(Owned::Tree(child.id()));
        // From here on the guard stops it on every way out.
        let mut registry = Registry {
            child,
            port,
            dir,
            _watched: watched,
        };
        let deadline = Instant::now() + START;
        while !answers(port, "/v2/") {
            if let Some(status) = registry.child.try_wait()? {
                bail!(
                    "docker-registry exited ({status}) before answering:\n{}",
                    registry.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not answer on 127.0.0.1:{port} within {} s:\n{}",
                    START.as_secs(),
                    registry.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the registry logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// Builds the Lambda-like base image (`docker build --network none`;
    /// the build context is the fixture and `runtime/`, a copy of the
    /// runtime interface client of `XTASK_RUNTIME_CLIENT`) as
    /// `xtask-ci-lambda-base:3.11` and copies it into the registry as
    /// `<host>/lambda/python:3.11` with skopeo: the manifest's digest there.
    pub fn push_lambda_base(&self, config: &Config, client: &Path) -> Result<String> {
        let context = config.cache_dir().join("ci").join("lambda-base");
        if context.exists() {
            fs::remove_dir_all(&context).with_context(|| format!("removing {}", context.display()))?;
        }
        fs::create_dir_all(&context)?;
        let fixture = config.root.join(BASE_FIXTURE);
        for name in ["Dockerfile", "lambda-entrypoint.sh"] {
            let from = fixture.join(name);
            fs::copy(&from, context.join(name)).with_context(|| format!("copying {}", from.display()))?;
        }
        let copied = Command::new("cp")
            .arg("-R")
            .arg(client)
            .arg(context.join("runtime"))
            .stdin(Stdio::null())
            .status()
            .context("starting cp")?;
        ensure!(
            copied.success(),
            "copying the runtime interface client {} into the build context failed ({copied})",
            client.display()
        );
        let context_text = context.to_string_lossy();
        // Kept under a name of its own: the next run's build is docker's
        // cache, the same image.
        docker_run(&[
            "build",
            "--quiet",
            // Nothing reused from the registry tests' builds of the same
            // base (tests/it/support/registry.rs: built alike, saved with
            // skopeo), which remove their images (and a shared cached
            // step's) once saved.
            "--no-cache",
            "--network",
            "none",
            "-t",
            LOCAL_BASE,
            &context_text,
        ])?;
        // skopeo, not `docker push`: docker compresses the layers afresh for
        // each registry (each run's has a new port) and not byte for byte
        // the same, skopeo does. The same image is then the same digest,
        // and the copy built on it finds that base in its store.
        let tag = format!("{}/{BASE}", self.host());
        let digest_file = context.join("digest");
        let copied = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false", "--digestfile"])
            .arg(&digest_file)
            .arg(format!("docker-daemon:{LOCAL_BASE}"))
            .arg(format!("docker://{tag}"))
            .stdin(Stdio::null())
            .output()
            .context("starting skopeo")?;
        ensure!(
            copied.status.success(),
            "skopeo copy of {LOCAL_BASE} to {tag} failed ({}): {}\nthe registry's log:\n{}",
            copied.status,
            String::from_utf8_lossy(&copied.stderr).trim(),
            self.log()
        );
        let digest =
            fs::read_to_string(&digest_file).with_context(|| format!("reading {}", digest_file.display()))?;
        let digest = digest.trim();
        ensure!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "skopeo copy wrote no digest for {tag}: {digest:?}"
        );
        let digest = digest.to_string();
        let _ = fs::remove_dir_all(&context);
        Ok(digest)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Its storage is thrown away with the run: nothing to shut down.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docker ARGS`: its standard output, or an error with what it said.
pub fn docker_run(args: &[&str]) -> Result<String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("starting docker")?;
    ensure!(
        output.status.success(),
        "docker {} failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
