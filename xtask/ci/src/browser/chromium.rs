//! Driving headless Chromium: finding one that starts, one bounded run
//! with a fresh profile (its DOM after the scripts ran, or a screenshot),
//! and stopping it with its helpers when it hangs.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The names a Chromium goes by on PATH, Debian's first.
pub const CHROMIUM_NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "chromium-headless-shell",
];

/// How long one Chromium run may take before it is stopped.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

/// A Chromium on PATH that starts (`--version` answers), and what it says
/// it is. Ubuntu's `chromium-browser` may be a stub asking for snap: it is
/// passed over.
pub fn find_chromium() -> Option<(PathBuf, String)> {
    CHROMIUM_NAMES.iter().find_map(|name| {
        let program = xtask::store::tools::which(Path::new(name))?;
        let mut command = Command::new(&program);
        command
            .arg("--version")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let (status, stdout) = run_bounded(&mut command, Duration::from_secs(10)).ok()?;
        let version = stdout.trim().to_string();
        (status.success() && !version.is_empty()).then_some((program, version))
    })
}

/// `file://` and the absolute path, with what a URL cannot hold escaped.
pub(super) fn file_url(path: &Path) -> Result<String> {
    let path = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(url)
}

/// One headless Chromium run with a fresh profile under `work`, bounded
/// by [`CHROMIUM_TIMEOUT`]; stdout into `stdout` when given. Its chatter
/// (D-Bus, GPU) goes to a log shown only when it fails.
pub(crate) fn run_chromium(
    chromium: &Path,
    work: &Path,
    args: &[String],
    stdout: Option<&Path>,
) -> Result<()> {
    let profile = work.join("chromium-profile");
    let _ = fs::remove_dir_all(&profile);
    let log_path = work.join("chromium.log");
    let log = fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(chromium);
    // As root Chromium refuses its sandbox; in containers /dev/shm is small.
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .args([
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Scripts run (in virtual time) before the DOM is dumped or drawn.
        .arg("--virtual-time-budget=5000")
        .args(args)
        .stderr(log);
    match stdout {
        Some(path) => {
            let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            command.stdout(file);
        }
        None => {
            command.stdout(Stdio::null());
        }
    }
    let status = run_bounded(&mut command, CHROMIUM_TIMEOUT);
    let _ = fs::remove_dir_all(&profile);
    let failed = match status {
        Ok((status, _)) if status.success() => return Ok(()),
        Ok((status, _)) => format!("Chromium failed ({status})"),
        Err(err) => format!("{err:#}"),
    };
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().filter(|line| !line.contains("dbus")).collect();
    let tail = &tail[tail.len().saturating_sub(15)..];
    bail!(
        "{failed}; the last of its log ({}):\n{}",
        log_path.display(),
        tail.join("\n")
    )
}

/// Runs `command` in a process group of its own; past `limit` the whole
/// group (the browser and its helpers) is asked to end, then the browser
/// itself is killed. What it printed on a piped stdout (a short answer:
/// nothing reads it before the end).
pub(super) fn run_bounded(command: &mut Command, limit: Duration) -> Result<(ExitStatus, String)> {
    let mut child = command
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .context("starting Chromium")?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut stdout = String::new();
            if let Some(mut pipe) = child.stdout.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stdout)?;
            }
            return Ok((status, stdout));
        }
        if Instant::now() >= deadline {
            stop(&mut child);
            bail!("Chromium did not finish in {} s and was stopped", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-TERM", "--", &group])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
