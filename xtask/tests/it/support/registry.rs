//! A container registry on 127.0.0.1 for the registry client's tests:
//! Debian's `docker-registry` (the CNCF distribution registry) serving its
//! own storage folder on a free port, optionally behind htpasswd basic
//! auth, killed and waited for when dropped; a front for it in Python
//! (`tests/fixtures/registry-proxy.py`: a token service, a dropped chunk);
//! and a Lambda-like base image (`tests/fixtures/lambda-base`) built with
//! docker once for the test process and copied into each registry with
//! skopeo.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xtask::store::registry::Reference;

use super::net::{answers, free_port};

const HOW: &str =
    "install Debian's docker-registry (`apt-get install docker-registry`; `cargo xtask ci` does)";

pub struct TestRegistry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A registry anyone may pull from and push to.
    pub fn start() -> TestRegistry {
        TestRegistry::serve(None)
    }

    /// A registry that wants `user` and `password` (HTTP basic auth).
    pub fn start_with_basic_auth(user: &str, password: &str) -> TestRegistry {
        TestRegistry::serve(Some((user, password)))
    }

    fn serve(basic: Option<(&str, &str)>) -> TestRegistry {
        let program = which("docker-registry")
            .unwrap_or_else(|| panic!("this test needs a container registry on this machine: {HOW}"));
        let dir = tempfile::Builder::new()
            .prefix("xtask-registry-")
            .tempdir()
            .unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: xtask-tests\n",
            storage.display()
        );
        if let Some((user, password)) = basic {
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, format!("{user}:{}\n", bcrypt(password))).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: xtask-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(program)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry serve");
        let mut registry = TestRegistry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(port, "/v2/") {
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", registry.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/<path>`, parsed.
    pub fn reference(&self, path: &str) -> Reference {
        Reference::parse(&format!("{}/{path}", self.host())).unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The registry's storage folder (distribution's filesystem layout:
    /// `docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps the blob `digest`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// How many blobs the registry holds (manifests count: they are blobs too).
    pub fn blob_count(&self) -> usize {
        let root = self.storage().join("docker/registry/v2/blobs/sha256");
        let Ok(prefixes) = fs::read_dir(&root) else {
            return 0;
        };
        prefixes
            .flatten()
            .filter_map(|prefix| fs::read_dir(prefix.path()).ok())
            .flat_map(|blobs| blobs.flatten())
            .filter(|blob| blob.path().join("data").is_file())
            .count()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/fixtures/registry-proxy.py` in front of a registry, killed when dropped.
pub struct Proxy {
    child: Child,
    pub port: u16,
}

impl Proxy {
    /// `mode`: `token` (a token service and Bearer tokens required),
    /// `lose-later-chunk` (the first chunk after an upload's first lost) or
    /// `break-first-chunk` (the first chunk broken half way).
    pub fn start(upstream: &TestRegistry, mode: &str) -> Proxy {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry-proxy.py");
        let port = free_port();
        let child = Command::new("python3")
            .arg(&script)
            .args([port.to_string(), upstream.port.to_string(), mode.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .expect("starting python3 tests/fixtures/registry-proxy.py");
        let mut proxy = Proxy { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(port, "/v2/") {
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!("registry-proxy.py exited ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "registry-proxy.py did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the proxy recorded at `/<what>` (`scopes`, `patches`).
    pub fn recorded(&self, what: &str) -> Vec<String> {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--noproxy", "*"])
            .arg(format!("http://{}/{what}", self.host()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A bcrypt hash of `password` for htpasswd: apache2-utils' `htpasswd`
/// when there is one, else Python's `crypt` (glibc's libxcrypt does bcrypt).
/// The password goes on standard input, not a command line.
fn bcrypt(password: &str) -> String {
    let run = |command: &mut Command| -> Option<String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(password.as_bytes()).ok()?;
        let output = child.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && text.contains("$2")).then_some(text)
    };
    let from_htpasswd = || {
        which("htpasswd")?;
        let line = run(Command::new("htpasswd").args(["-niB", "user"]))?;
        line.split_once(':').map(|(_, hash)| hash.to_string())
    };
    let from_python = || {
        run(Command::new("python3").args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH)))",
        ]))
    };
    from_htpasswd().or_else(from_python).unwrap_or_else(|| {
        panic!(
            "this test needs a bcrypt hash for the registry's htpasswd: install apache2-utils \
             (`apt-get install apache2-utils`) or a python3 whose crypt module does bcrypt"
        )
    })
}

/// The Lambda-like base image of `tests/fixtures/lambda-base` (the test
/// image with AWS's runtime interface client), copied into `registry` as
/// `lambda/python:3.11`: its reference by digest. The same bytes in every
/// registry of the run, so the same digest.
pub fn test_base(registry: &TestRegistry) -> Reference {
    push_base(registry, "base", "lambda/python:3.11")
}

/// [`test_base`] with one more layer (a file, `/etc/extra.txt`), copied
/// into `registry` as `lambda/python:3.11-extra`: its reference by digest.
pub fn extra_base(registry: &TestRegistry) -> Reference {
    push_base(registry, "extra", "lambda/python:3.11-extra")
}

/// `skopeo copy` of one of the [`base_layouts`] into the registry, in
/// docker's manifest format (what `docker push` sends, and the ci stage's
/// copy from docker too); the registry's blobs are the layout's bytes.
fn push_base(registry: &TestRegistry, layout: &str, tag: &str) -> Reference {
    let layouts = base_layouts();
    let target = format!("{}/{tag}", registry.host());
    let digest_file = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new("skopeo")
        .args(["copy", "--quiet", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg("--digestfile")
        .arg(digest_file.path())
        .arg(format!("oci:{}:latest", layouts.join(layout).display()))
        .arg(format!("docker://{target}"))
        .stdin(Stdio::null())
        .output()
        .expect("this test needs skopeo (`apt-get install skopeo`; `cargo xtask ci` installs it)");
    assert!(
        output.status.success(),
        "skopeo copy of the test base to {target}: {}\nthe registry's log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        registry.log()
    );
    let digest = fs::read_to_string(digest_file.path()).unwrap();
    let digest = digest.trim();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "skopeo copy wrote no digest for {target}: {digest:?}"
    );
    registry.reference(&format!("{}@{digest}", tag.split_once(':').unwrap().0))
}

/// The folder of the test bases' OCI image layouts (`base` and `extra`),
/// built with docker once for the whole test process: one `docker build`
/// of the base (no network needed), one of the layer more, both saved with
/// skopeo (its layers compressed once) and removed from docker. The folder
/// is under cargo's temporary folder for the tests, named after the
/// process; a folder of a process that has ended is removed here.
fn base_layouts() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_base_layouts)
}

fn build_base_layouts() -> PathBuf {
    let engine = super::require_engine();
    assert_eq!(engine, "docker", "the test bases are built with docker");
    super::require_runtime();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let pid = std::process::id();
    for entry in fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(owner) = name.strip_prefix("lambda-base-") {
            if !Path::new("/proc").join(owner).exists() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let layouts = tmp.join(format!("lambda-base-{pid}"));
    let _ = fs::remove_dir_all(&layouts);
    fs::create_dir_all(&layouts).unwrap();

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lambda-base");
    let context = tempfile::Builder::new().prefix("xtask-base-").tempdir().unwrap();
    for name in ["Dockerfile", "lambda-entrypoint.sh"] {
        fs::copy(fixture.join(name), context.path().join(name)).unwrap();
    }
    let client = PathBuf::from(std::env::var_os("XTASK_RUNTIME_CLIENT").unwrap());
    let status = Command::new("cp")
        .arg("-R")
        .arg(&client)
        .arg(context.path().join("runtime"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "copying the runtime client into the build context"
    );
    let extra_context = tempfile::Builder::new().prefix("xtask-base-").tempdir().unwrap();
    // The process's own names: other test processes build theirs beside.
    let (base, extra) = (
        format!("xtask-test-lambda-base:{pid}"),
        format!("xtask-test-lambda-base:{pid}-extra"),
    );
    // No `RUN`: nothing runs.
    fs::write(
        extra_context.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY extra.txt /etc/extra.txt\n"),
    )
    .unwrap();
    fs::write(extra_context.path().join("extra.txt"), "one more layer\n").unwrap();

    let _images = super::ENGINE_IMAGES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let run = |program: &str, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("starting {program}: {err}"));
        assert!(
            output.status.success(),
            "{program} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    for (tag, context) in [(&base, context.path()), (&extra, extra_context.path())] {
        run(
            "docker",
            &[
                "build",
                "--quiet",
                // Nothing reused: another process removing its own base
                // would take a shared cached step's image with it.
                "--no-cache",
                "--network",
                "none",
                "-t",
                tag,
                &context.to_string_lossy(),
            ],
        );
    }
    for (tag, name) in [(&base, "base"), (&extra, "extra")] {
        run(
            "skopeo",
            &[
                "copy",
                "--quiet",
                &format!("docker-daemon:{tag}"),
                &format!("oci:{}:latest", layouts.join(name).display()),
            ],
        );
    }
    run("docker", &["rmi", &extra, &base]);
    layouts
}
