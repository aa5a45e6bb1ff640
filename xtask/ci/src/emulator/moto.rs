//! moto in server mode on 127.0.0.1: started on a free port, waited for
//! until it answers, stopped on every way out; and Python run against it
//! with its credentials and nothing else of the machine's AWS settings.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use super::{tail, REGION};
use crate::net::{answers, free_port};

/// How long moto may take to answer after it was started.
const MOTO_START: Duration = Duration::from_secs(60);

/// Leaves out of a command's environment what would point it elsewhere
/// than moto or change what is applied or emulated: the machine's AWS
/// settings (profiles, credentials, endpoints), moto's own settings and
/// Terraform's variables and extra arguments.
pub(super) fn isolate(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("AWS_")
            || key_text.starts_with("MOTO_")
            || key_text.starts_with("TF_VAR_")
            || key_text.starts_with("TF_CLI_ARGS")
            || key_text == "TF_WORKSPACE"
        {
            command.env_remove(&key);
        }
    }
    command.env("AWS_CONFIG_FILE", "/dev/null");
    command.env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
}

/// `python -I -c SCRIPT ARGS` with moto's credentials and region; its stdout.
pub(super) fn run_python(python: &Path, script: &str, args: &[&str]) -> Result<Vec<u8>> {
    let mut command = Command::new(python);
    isolate(&mut command);
    let output = command
        .args(["-I", "-c", script])
        .args(args)
        .envs([
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", REGION),
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", python.display()))?;
    ensure!(
        output.status.success(),
        "python failed ({}):\n{}",
        output.status,
        tail(&output.stderr, 20)
    );
    Ok(output.stdout)
}

/// moto in server mode on a free port of 127.0.0.1; killed and waited for
/// when dropped, whatever happened in between.
pub(super) struct Moto {
    pub(super) child: Child,
    port: u16,
}

impl Moto {
    /// Starts `python -m moto.server` and waits until it answers HTTP.
    pub(super) fn start(python: &Path, log: &Path) -> Result<Moto> {
        let port = free_port()?;
        let log_file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(python);
        isolate(&mut command);
        let child = command
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting moto (python -m moto.server)")?;
        // From here on the guard stops moto on every way out.
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + MOTO_START;
        loop {
            if let Some(status) = moto.child.try_wait()? {
                let said = fs::read(log).unwrap_or_default();
                bail!("moto exited ({status}) before answering:\n{}", tail(&said, 20));
            }
            if answers(port, "/moto-api/") {
                return Ok(moto);
            }
            if Instant::now() > deadline {
                let said = fs::read(log).unwrap_or_default();
                bail!(
                    "moto did not answer on 127.0.0.1:{port} within {} s:\n{}",
                    MOTO_START.as_secs(),
                    tail(&said, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(super) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Everything moto holds is in memory: nothing to shut down cleanly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
