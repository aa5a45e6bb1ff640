//! Test worlds: temporary repositories with their own configuration, tiny
//! wheels and requirements, and a runner for the real `xtask` binary.

pub mod app;
pub mod moto;
pub mod net;
pub mod registry;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{OnceLock, PoisonError, RwLock};

pub use app::App;

pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// A workspace whose root Cargo.toml carries `metadata` (TOML text that
    /// starts with `[workspace.metadata.lambda]`).
    pub fn new(metadata: &str) -> Repo {
        let dir = tempfile::Builder::new().prefix("xtask-test-").tempdir().unwrap();
        // As a checkout is: the sandbox user of `smoke` and `invoke` (not
        // the owner) must reach the functions laid out under target/.
        fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let repo = Repo { dir };
        repo.set_metadata(metadata);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn set_metadata(&self, metadata: &str) {
        self.write("Cargo.toml", &format!("[workspace]\n\n{metadata}"));
    }

    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }

    pub fn read(&self, relative: &str) -> Vec<u8> {
        fs::read(self.path().join(relative)).unwrap_or_else(|err| panic!("reading {relative}: {err}"))
    }

    /// A dependency profile `layers/<name>/requirements.txt` that installs
    /// only from the wheels next to it (`layers/<name>/wheels`).
    pub fn profile(&self, name: &str, requirements: &[&str]) {
        let mut text = String::from("--no-index\n--find-links wheels\n");
        for requirement in requirements {
            text.push_str(requirement);
            text.push('\n');
        }
        self.write(&format!("layers/{name}/requirements.txt"), &text);
        fs::create_dir_all(self.path().join(format!("layers/{name}/wheels"))).unwrap();
    }

    /// A pure-Python wheel in `layers/<profile>/wheels`.
    pub fn wheel(&self, profile: &str, name: &str, version: &str, files: &[(&str, &str)], requires: &[&str]) {
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(path, text)| (*path, text.as_bytes()))
            .collect();
        self.wheel_bytes(profile, name, version, &files, requires);
    }

    /// A pure-Python wheel whose `METADATA` also has these header lines
    /// (`License-Expression: MIT`, a `Classifier: License :: …`).
    pub fn wheel_with_metadata(
        &self,
        profile: &str,
        name: &str,
        version: &str,
        files: &[(&str, &str)],
        metadata: &[&str],
    ) {
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(path, text)| (*path, text.as_bytes()))
            .collect();
        let dir = self.path().join(format!("layers/{profile}/wheels"));
        write_wheel_with(&dir, name, version, &files, &[], metadata);
    }

    pub fn wheel_bytes(
        &self,
        profile: &str,
        name: &str,
        version: &str,
        files: &[(&str, &[u8])],
        requires: &[&str],
    ) {
        let dir = self.path().join(format!("layers/{profile}/wheels"));
        write_wheel(&dir, name, version, files, requires);
    }

    /// The cache of finished distributions its runs use, unless a test
    /// names another with `XTASK_CACHE_DIR`.
    pub fn user_cache(&self) -> PathBuf {
        self.path().join("target").join(USER_CACHE)
    }

    /// Runs `xtask ARGS` in the repository.
    pub fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_with(args, &[])
    }

    pub fn xtask_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(args);
        self.run(command, env)
    }

    /// Runs xtask under another umask, as another user's shell would.
    pub fn xtask_umask(&self, umask: &str, args: &[&str]) -> Run {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_xtask"))
            .args(args);
        self.run(command, &[])
    }

    fn run(&self, mut command: Command, env: &[(&str, &str)]) -> Run {
        command
            .current_dir(self.path())
            // Each test world keeps its own cache and target directory.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("UV_CACHE_DIR")
            .env_remove("PIP_CACHE_DIR")
            // And its own cache of finished distributions, beside its
            // target directory, unless the test names one.
            .env("XTASK_CACHE_DIR", self.path().join("target").join(USER_CACHE));
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().expect("running xtask");
        Run(output)
    }

    pub fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&self.read("dist/manifest.json")).unwrap()
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    #[track_caller]
    pub fn success(&self) -> &Run {
        assert_eq!(
            self.code(),
            0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    #[track_caller]
    pub fn fails_with(&self, code: i32, needle: &str) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr()
        );
        assert!(!self.stderr().contains("panicked"), "panic:\n{}", self.stderr());
        self
    }
}

/// A URL's userinfo `@`, put in when a test runs: no credential-shaped URL
/// stands in the tests' source.
pub const AT: char = '@';

/// The folder of a test repository's own finished-distribution cache,
/// under its `target/`.
pub const USER_CACHE: &str = "user-cache";

pub fn write_wheel(dir: &Path, name: &str, version: &str, files: &[(&str, &[u8])], requires: &[&str]) {
    write_wheel_with(dir, name, version, files, requires, &[]);
}

/// A wheel whose `METADATA` header also has the lines `extra`.
pub fn write_wheel_with(
    dir: &Path,
    name: &str,
    version: &str,
    files: &[(&str, &[u8])],
    requires: &[&str],
    extra: &[&str],
) {
    fs::create_dir_all(dir).unwrap();
    let dist_info = format!("{name}-{version}.dist-info");
    let mut metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    for requirement in requires {
        metadata.push_str(&format!("Requires-Dist: {requirement}\n"));
    }
    for line in extra {
        metadata.push_str(&format!("{line}\n"));
    }
    let mut entries: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(path, content)| (path.to_string(), content.to_vec()))
        .collect();
    entries.push((format!("{dist_info}/METADATA"), metadata.into_bytes()));
    entries.push((
        format!("{dist_info}/WHEEL"),
        b"Wheel-Version: 1.0\nGenerator: xtask-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
    ));
    let mut record = String::new();
    for (path, content) in &entries {
        record.push_str(&format!("{path},,{}\n", content.len()));
    }
    record.push_str(&format!("{dist_info}/RECORD,,\n"));
    entries.push((format!("{dist_info}/RECORD"), record.into_bytes()));
    let file = fs::File::create(dir.join(format!("{name}-{version}-py3-none-any.whl"))).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    for (path, content) in entries {
        zip.start_file(path, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&content).unwrap();
    }
    zip.finish().unwrap();
}

/// The file names in a ZIP, in stored order.
pub fn zip_names(path: &Path) -> Vec<String> {
    let archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    archive
        .file_names()
        .map(|name| name.unwrap().to_string())
        .collect()
}

pub fn sha256_hex(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The self-built stand-in for the SAM build image (Debian with python3 and
/// pip), built by `.ci/test-image.sh` when missing.
pub const TEST_IMAGE: &str = "xtask-test-python:bookworm";

/// Held for writing while the test image is built, and for reading by a
/// test that compares the engine's images before and after a run: in one
/// process, a build for another test must not look like that run's doing.
pub static ENGINE_IMAGES: RwLock<()> = RwLock::new(());

/// For the tests of a `needs_engine` group: the container engine that
/// answers (docker or podman), with [`TEST_IMAGE`] built first where it is
/// missing (once for the whole run). Fails the test, saying what is missing
/// and how to have it, where there is no engine or the image cannot be built.
pub fn require_engine() -> &'static str {
    static READY: OnceLock<Result<&'static str, String>> = OnceLock::new();
    match READY.get_or_init(engine_with_test_image) {
        Ok(engine) => engine,
        Err(why) => panic!("this test needs a container engine with the test image: {why}"),
    }
}

fn engine_with_test_image() -> Result<&'static str, String> {
    let answers = |engine: &str| {
        Command::new(engine)
            .arg("version")
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let Some(engine) = ["docker", "podman"].into_iter().find(|engine| answers(engine)) else {
        return Err(
            "neither docker nor podman answers (`docker version`): install one and start it \
                    (`cargo xtask ci` starts an installed Docker daemon as root)"
                .to_string(),
        );
    };
    let present = Command::new(engine)
        .args(["image", "inspect", TEST_IMAGE])
        .output()
        .is_ok_and(|output| output.status.success());
    if present {
        return Ok(engine);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/test-image.sh");
    let _building = ENGINE_IMAGES.write().unwrap_or_else(PoisonError::into_inner);
    let built = Command::new("bash")
        .arg(&script)
        .env("CONTAINER_ENGINE", engine)
        .status()
        .map_err(|err| format!("running .ci/test-image.sh: {err}"))?;
    if !built.success() {
        return Err(format!(
            "{engine} has no image {TEST_IMAGE} and .ci/test-image.sh could not build it ({built}; \
             it needs mmdebstrap, `apt-get install mmdebstrap`, and a Debian mirror)"
        ));
    }
    Ok(engine)
}

/// For the tests of a `needs_runtime` group, which run functions as Lambda
/// does: the folder `XTASK_RUNTIME_CLIENT` names holds AWS's runtime
/// interface client for Python 3.11, the tests' runtime. Fails the test,
/// saying how to have one, otherwise (each test repository would install
/// its own from PyPI).
pub fn require_runtime() {
    const HOW: &str = "set XTASK_RUNTIME_CLIENT to a folder holding awslambdaric for Python 3.11 \
                       (`cargo xtask ci` installs one and sets it; or \
                       `uv pip install --python python3.11 --target DIR awslambdaric`)";
    let Some(dir) = std::env::var_os("XTASK_RUNTIME_CLIENT") else {
        panic!("this test needs AWS's runtime interface client: {HOW}");
    };
    let holds = fs::read_dir(&dir).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("runtime_client.cpython-311-")
        })
    });
    assert!(
        holds,
        "this test needs AWS's runtime interface client, and XTASK_RUNTIME_CLIENT={} holds none for Python 3.11: {HOW}",
        Path::new(&dir).display()
    );
}

/// `dist/report.html` as two builds of the same inputs must agree on it:
/// without the content of its `<section id="changes">` (a comparison with
/// whatever was built before) and without the measured init times
/// (`data-init-ms` and `span.ms`). `incremental.rs` tests that nothing else
/// is left out.
pub fn html_report(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let text = blank(&text, "<section id=\"changes\"", "</section>");
    let text = blank(&text, "data-init-ms=\"", "\"");
    let text = blank(&text, "<span class=\"ms\">", "</span>");
    text.into_bytes()
}

/// `text` with what lies between each `open` and the next `close` removed.
fn blank(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let after = start + open.len();
        let Some(end) = rest[after..].find(close) else {
            break;
        };
        out.push_str(&rest[..after]);
        rest = &rest[after + end..];
    }
    out.push_str(rest);
    out
}
