//! moto in server mode on 127.0.0.1 for the remote cache's tests: its
//! virtualenv made once from terraform/tests/emulator/requirements.txt with
//! uv (as `cargo xtask ci` makes the emulator's), the server killed and
//! waited for when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::net::{answers, free_port};

const REQUIREMENTS: &str = "../terraform/tests/emulator/requirements.txt";

pub struct Moto {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

/// moto started, for the tests of a `needs_moto` group. Fails the test,
/// saying why, when its virtualenv cannot be made on this machine (uv
/// installs it from PyPI or the index the uv variables name).
pub fn start() -> Moto {
    let python = venv().unwrap_or_else(|why| {
        panic!(
            "this test needs moto's S3 server, whose virtualenv cannot be made here ({why}): \
             it needs uv on PATH (`cargo xtask ci` provides it) and a package index"
        )
    });
    let port = free_port();
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("moto-{port}.log"));
    let log_file = fs::File::create(&log).unwrap();
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .env_remove("AWS_PROFILE")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("starting python -m moto.server");
    let mut moto = Moto { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(port, "/moto-api/") {
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!(
                "moto exited ({status}):\n{}",
                fs::read_to_string(&moto.log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "moto did not answer on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// The virtualenv's python, made once per requirements' content.
fn venv() -> Result<PathBuf, String> {
    static MADE: Mutex<()> = Mutex::new(());
    let _guard = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join(REQUIREMENTS);
    let wanted = fs::read(&requirements).map_err(|err| format!("reading {REQUIREMENTS}: {err}"))?;
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements");
    if fs::read(&stamp).ok().as_deref() == Some(wanted.as_slice()) && python.exists() {
        return Ok(python);
    }
    let _ = fs::remove_dir_all(&venv);
    let run = |command: &mut Command| -> Result<(), String> {
        let output = command
            .env("UV_PYTHON_DOWNLOADS", "never")
            .output()
            .map_err(|err| format!("running uv: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    };
    run(Command::new("uv")
        .args(["venv", "--quiet", "--python", "python3"])
        .arg(&venv))?;
    run(Command::new("uv")
        .args(["pip", "install", "--quiet", "--python"])
        .arg(&python)
        .arg("-r")
        .arg(&requirements))?;
    fs::write(&stamp, wanted).map_err(|err| err.to_string())?;
    Ok(python)
}

impl Moto {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn curl(&self, args: &[&str]) -> Output {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--noproxy", "*"])
            // moto refuses anonymous reads of what was written with keys.
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "testing:testing"])
            .args(args)
            .output()
            .expect("running curl");
        assert!(
            output.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Creates a bucket (moto checks no signature).
    pub fn create_bucket(&self, bucket: &str) {
        self.curl(&["-X", "PUT", &format!("{}/{bucket}", self.endpoint())]);
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let output = self.curl(&[&format!("{}/{bucket}?list-type=2", self.endpoint())]);
        let text = String::from_utf8_lossy(&output.stdout);
        let mut keys: Vec<String> = text
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
            .collect();
        keys.sort();
        keys
    }

    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.curl(&[&format!("{}/{bucket}/{key}", self.endpoint())])
            .stdout
    }

    pub fn put(&self, bucket: &str, key: &str, file: &Path) {
        self.curl(&[
            "--upload-file",
            file.to_str().unwrap(),
            &format!("{}/{bucket}/{key}", self.endpoint()),
        ]);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
