//! The servers the stages start: `cargo xtask serve` itself and the static
//! page server of the browser stage. Each runs in a process group of its
//! own, tells its address on its first line of stdout, and is stopped on
//! every way out, a failed check included: SIGTERM to its group (xtask's
//! reaper then ends the functions it started), SIGKILL to what is left.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use xshell::Shell;

use xtask::contain::reaper::{self, Owned, Watched};
use xtask::lambda::runtime_env::RUNTIME_CLIENT_VARIABLE;

/// How long serve may take to print its address: it builds first (up to
/// date after the earlier stages, a few seconds) and starts the fakes.
const SERVE_START: Duration = Duration::from_secs(240);

/// How long a server has to end on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `program` in the shell's folder with the variables provisioning gave the
/// shell (the bootstrapped uv on PATH, the runtime interface client the
/// sandbox user can read): a `Command` does not see a `Shell`'s variables.
pub(super) fn command(sh: &Shell, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command.current_dir(sh.current_dir());
    for name in ["PATH", RUNTIME_CLIENT_VARIABLE] {
        if let Ok(value) = sh.var(name) {
            command.env(name, value);
        }
    }
    command
}

/// A server started in a process group of its own, its stderr in `log`.
pub(super) struct Server {
    child: Child,
    /// What it printed first on stdout (its address).
    pub first_line: String,
    pub log: PathBuf,
    _watched: Watched,
}

impl Server {
    /// Starts `command` and waits (at most `limit`) for its first line.
    pub(super) fn start(mut command: Command, what: &str, log: &Path, limit: Duration) -> Result<Server> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log_file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let watched = reaper::watch(Owned::Tree(child.id()));
        let stdout = child.stdout.take().context("its stdout")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = sender.send(line);
            // The rest is read and dropped: a server must not block on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        // From here on, dropping the server stops it.
        let mut server = Server {
            child,
            first_line: String::new(),
            log: log.to_path_buf(),
            _watched: watched,
        };
        let deadline = Instant::now() + limit;
        loop {
            match receiver.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if !line.trim().is_empty() => {
                    server.first_line = line.trim().to_string();
                    return Ok(server);
                }
                Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait()?;
                    bail!(
                        "{what} exited ({status}) before printing its address; the end of its log ({}):\n{}",
                        log.display(),
                        server.log_tail(30)
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => bail!(
                    "{what} printed no address within {} s; the end of its log ({}):\n{}",
                    limit.as_secs(),
                    log.display(),
                    server.log_tail(30)
                ),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// The last `count` lines of its log, indented.
    pub(super) fn log_tail(&self, count: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(count)..]
            .iter()
            .map(|line| format!("  | {}", shorten(line, 300)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Its log so far.
    pub(super) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while !exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Before the wait: until it is reaped its pid (and group) is not reused.
        reaper::end(&Owned::Tree(pid));
        let _ = self.child.wait();
    }
}

/// Whether our child `pid` has exited (a zombie, not reaped yet).
fn exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// `cargo xtask serve --fakes` on a free port, functions built and run on
/// the host, with `args` after; stopped when dropped.
pub(super) struct Serve {
    pub server: Server,
    /// `http://127.0.0.1:PORT`, the first line serve prints.
    pub url: String,
    pub port: u16,
}

impl Serve {
    pub(super) fn start(sh: &Shell, xtask: &Path, args: &[String], log: &Path) -> Result<Serve> {
        let mut command = command(sh, xtask);
        command
            .args([
                "serve",
                "--fakes",
                "--port",
                "0",
                "--builder",
                "host",
                "--runner",
                "host",
            ])
            .args(args);
        let started = Instant::now();
        let server = Server::start(command, "cargo xtask serve", log, SERVE_START)?;
        let url = server.first_line.clone();
        let port = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|port| port.parse::<u16>().ok())
            .with_context(|| format!("serve's first line is not http://127.0.0.1:PORT: {url:?}"))?;
        eprintln!(
            "ci: serve answers on {url} after {:.1} s (its log: {})",
            started.elapsed().as_secs_f64(),
            log.display()
        );
        Ok(Serve { server, url, port })
    }
}

/// `text` cut to `limit` characters, with an ellipsis when cut.
pub(super) fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let kept: String = text.chars().take(limit).collect();
    format!("{kept}…")
}
