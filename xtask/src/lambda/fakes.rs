//! The local world of `invoke --all`: `<events>/fakes.py` run with the
//! development virtualenv's Python; it prints one line of JSON,
//! `{"env": {"<function>": {...}}}`, and serves until its stdin closes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::Config;
use crate::ground::progress::Printer;
use crate::python::installer::InstallerChoice;

/// The running fakes and the variables they gave each function.
pub struct Fakes {
    child: Option<Child>,
    pub env: BTreeMap<String, Vec<(String, String)>>,
}

/// How long the fakes may take to start.
const FAKES_START: Duration = Duration::from_secs(60);

impl Fakes {
    /// Starts `<events>/fakes.py` when there is one and waits for its line.
    pub fn start(
        sh: &xshell::Shell,
        config: &Config,
        installer: InstallerChoice,
        printer: &Printer,
    ) -> Result<Fakes> {
        let script = config.root.join(&config.events).join("fakes.py");
        if !script.is_file() {
            return Ok(Fakes {
                child: None,
                env: BTreeMap::new(),
            });
        }
        let python = crate::lambda::dev_env::python(sh, config, installer)?;
        printer.info(&format!("fakes: starting {}", relative(config, &script)));
        let mut child = Command::new(&python)
            .arg(&script)
            .current_dir(&config.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let stdout = child.stdout.take().context("the fakes' stdout")?;
        let stderr = child.stderr.take().context("the fakes' stderr")?;
        let logs = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver.recv_timeout(FAKES_START).unwrap_or_default();
        let parsed: Option<BTreeMap<String, BTreeMap<String, String>>> = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|value| serde_json::from_value(value["env"].clone()).ok());
        let Some(env) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            let said = logs.join().unwrap_or_default();
            let tail: Vec<&str> = said
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            anyhow::bail!(
                "{} did not print its {{\"env\": …}} line: {}",
                relative(config, &script),
                tail.join(" | ")
            );
        };
        Ok(Fakes {
            child: Some(child),
            env: env
                .into_iter()
                .map(|(function, vars)| (function, vars.into_iter().collect()))
                .collect(),
        })
    }
}

fn relative(config: &Config, path: &Path) -> String {
    path.strip_prefix(&config.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

impl Drop for Fakes {
    fn drop(&mut self) {
        // Everything the fakes hold is in memory: a short grace period for a
        // clean exit, then they are stopped.
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let deadline = Instant::now() + FAKES_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How long the fakes may take to stop by themselves.
const FAKES_GRACE: Duration = Duration::from_millis(100);
