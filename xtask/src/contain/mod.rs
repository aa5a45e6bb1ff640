//! The containment wing: processes the tool starts for code it does not
//! own, and their end. Imports only the ground floor.
//!
//! - this file: running a program contained (allow-listed environment,
//!   private folders, no network, the sandbox user);
//! - `reaper`: what a run started is ended, on exit and on SIGINT/SIGTERM.
//!
//! Running code the tool does not own (a layer's modules on import) and the
//! interpreter's tools over files it does not own (compiling, parsing) with
//! nothing they do not need: an environment built from an allow-list (no
//! credentials, tokens or index URLs), a private home and temporary folder,
//! no network, and for the proof's imports the sandbox user when the tool
//! runs as root.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result};

pub mod reaper;

use crate::facts;

/// The caller's variables a contained process keeps: where programs are,
/// the locale, and the library path that an interpreter linked against a
/// shared libpython outside the loader's default folders needs to start.
const KEPT: &[&str] = &["PATH", "LANG", "LANGUAGE", "TZ", "LD_LIBRARY_PATH"];
/// And the locale's categories (`LC_ALL`, `LC_CTYPE`, …).
const KEPT_PREFIX: &str = "LC_";

/// Of `caller`'s environment, what a contained process keeps: the
/// allow-list, nothing else (credentials, tokens, index URLs, proxies).
pub fn kept_environment(caller: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    caller
        .into_iter()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            KEPT.contains(&name.as_ref()) || name.starts_with(KEPT_PREFIX)
        })
        .collect()
}

/// Whether this process runs as root (and so can switch users and make a
/// network namespace).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A contained process's private home, temporary folder and working
/// directory (removed when dropped), and who it runs as.
pub struct Contained {
    home: PathBuf,
    user: Option<u32>,
    /// The `unshare(2)` flags that take it off the network, if this
    /// machine allows one.
    network: Option<libc::c_int>,
}

impl Contained {
    /// As the invoking user, for the interpreter's own tools (`compileall`,
    /// the parser): they read the files, they run none of them.
    pub fn as_invoker(parent: &Path) -> Result<Contained> {
        Contained::new(parent, None)
    }

    /// As the sandbox user ([`facts::SANDBOX_UID`]), for imports of third-
    /// party code; the caller has checked with [`sandbox_python`] that the
    /// user reaches what it reads.
    pub fn as_sandbox_user(parent: &Path) -> Result<Contained> {
        Contained::new(parent, Some(facts::SANDBOX_UID))
    }

    fn new(parent: &Path, user: Option<u32>) -> Result<Contained> {
        let home = crate::ground::atomic::private_dir_in(parent, ".xtask-home-", 0o700)?;
        let contained = Contained {
            home,
            user,
            network: network_isolation().ok(),
        };
        if let Some(uid) = user {
            std::os::unix::fs::chown(&contained.home, Some(uid), Some(uid))
                .with_context(|| format!("giving {} to uid {uid}", contained.home.display()))?;
        }
        Ok(contained)
    }

    /// `program` with the allow-listed environment, `HOME` and `TMPDIR` in
    /// the private folder (also its working directory), stdin empty, in a
    /// network namespace of its own and as the chosen user.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .envs(kept_environment(std::env::vars_os()))
            .env("HOME", &self.home)
            .env("TMPDIR", &self.home)
            .current_dir(&self.home)
            .stdin(Stdio::null());
        let (network, user) = (self.network, self.user);
        // SAFETY: the closure runs in the child between fork and exec and
        // calls only async-signal-safe system calls; it allocates nothing
        // (an `io::Error` from errno is not boxed).
        unsafe {
            command.pre_exec(move || enter(network, user));
        }
        command
    }

    /// Runs `command` (made by [`Contained::command`]) to its end, with
    /// `input` on its stdin, then ends what it left running in its process
    /// group (a module that starts a process on import). Its output goes to
    /// files, not pipes: a process left holding them cannot keep the run
    /// waiting.
    pub fn output(&self, mut command: Command, input: Option<&[u8]>) -> std::io::Result<Output> {
        let (mut stdout, mut stderr) = (self.scratch("stdout")?, self.scratch("stderr")?);
        command
            .stdout(stdout.try_clone()?)
            .stderr(stderr.try_clone()?)
            .process_group(0);
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn()?;
        // SIGINT or SIGTERM to xtask ends what it runs too.
        let _watched = crate::contain::reaper::watch(crate::contain::reaper::Owned::Tree(child.id()));
        let writer = match (input, child.stdin.take()) {
            (Some(input), Some(mut stdin)) => {
                let input = input.to_vec();
                // A child that exits without reading everything closes the pipe: its status says why.
                Some(std::thread::spawn(move || stdin.write_all(&input)))
            }
            _ => None,
        };
        if let Ok(group) = libc::pid_t::try_from(child.id()) {
            // SAFETY: waitid with WNOWAIT waits for the child's end without
            // reaping it: while it is a zombie its pid, and so the id of its
            // process group, cannot be taken by another process; the
            // signal then reaches only what it left in its group.
            unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                while libc::waitid(
                    libc::P_PID,
                    group as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                ) != 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                }
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let status = child.wait();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let read = |file: &mut fs::File| -> std::io::Result<Vec<u8>> {
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        Ok(Output {
            status: status?,
            stdout: read(&mut stdout)?,
            stderr: read(&mut stderr)?,
        })
    }

    /// An anonymous file for the child's output: made in the private folder
    /// and unlinked at once, so that nothing but its descriptor reaches it.
    fn scratch(&self, name: &str) -> std::io::Result<fs::File> {
        let path = self.home.join(format!(
            ".{name}-{}",
            crate::ground::atomic::random_hex().map_err(std::io::Error::other)?
        ));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        fs::remove_file(&path)?;
        Ok(file)
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.home);
    }
}

/// In the child, before exec: off the network, then (after what needs root)
/// the sandbox user with no supplementary groups, and no way back to more
/// privilege through a set-user-id program.
fn enter(network: Option<libc::c_int>, user: Option<u32>) -> std::io::Result<()> {
    let check = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    // SAFETY: plain system calls on values; see `Contained::command`.
    unsafe {
        if let Some(flags) = network {
            check(libc::unshare(flags))?;
        }
        if let Some(uid) = user {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(uid))?;
            check(libc::setuid(uid))?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
    }
    Ok(())
}

/// The `unshare(2)` flags that give a child a network of its own (only a
/// loopback interface, down), or why this machine allows none: root makes a
/// network namespace; another user only inside a user namespace, where the
/// kernel lets unprivileged users make one. Asked once per run, by a child
/// that tries and exits.
pub fn network_isolation() -> Result<libc::c_int, String> {
    static ANSWER: OnceLock<Result<libc::c_int, String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let flags = if is_root() {
                libc::CLONE_NEWNET
            } else {
                libc::CLONE_NEWUSER | libc::CLONE_NEWNET
            };
            match try_unshare(flags) {
                Ok(()) => Ok(flags),
                Err(err) if is_root() => Err(format!("unshare(CLONE_NEWNET) failed: {err}")),
                Err(err) => Err(format!(
                    "isolating the network needs root or user namespaces, and unshare(CLONE_NEWUSER|CLONE_NEWNET) failed: {err}"
                )),
            }
        })
        .clone()
}

/// Whether a child can `unshare(flags)`: forked, it tries and exits.
fn try_unshare(flags: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the child calls only async-signal-safe functions (unshare,
    // _exit) and touches no memory shared with other threads.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            let code = if libc::unshare(flags) == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(1)
            };
            libc::_exit(code);
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) != pid {
            return Err(std::io::Error::last_os_error());
        }
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
            Some(0) => Ok(()),
            Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
            None => Err(std::io::Error::other("the child did not exit")),
        }
    }
}

/// The interpreter the sandbox user runs in place of `python`: `python`
/// itself, or the system's `python<version>`, when the tool runs as root and
/// that user can reach the interpreter and every folder in `reads`;
/// otherwise why not (the imports then run as the invoking user).
pub fn sandbox_python(python: &Path, version: &str, reads: &[&Path]) -> Result<PathBuf, String> {
    if !is_root() {
        return Err("the tool does not run as root, so it cannot switch to the sandbox user".to_string());
    }
    let candidates = [
        python.to_path_buf(),
        PathBuf::from(format!("/usr/bin/python{version}")),
        PathBuf::from(format!("/usr/local/bin/python{version}")),
    ];
    let Some(usable) = candidates.into_iter().find(|candidate| others_reach(candidate)) else {
        return Err(format!(
            "the sandbox user (uid {}) cannot reach {} (no Python {version} outside private folders)",
            facts::SANDBOX_UID,
            python.display()
        ));
    };
    if let Some(blocked) = reads.iter().find_map(|dir| closed_to_others(dir)) {
        return Err(format!(
            "the sandbox user (uid {}) cannot enter {} (let others enter it: chmod o+rx)",
            facts::SANDBOX_UID,
            blocked.display()
        ));
    }
    Ok(usable)
}

/// The first folder from the root down to `dir` (included) that users other
/// than its owner and group cannot enter (`dir` itself: nor list), if any.
fn closed_to_others(dir: &Path) -> Option<PathBuf> {
    let Ok(dir) = dir.canonicalize() else {
        return Some(dir.to_path_buf());
    };
    let mut folders: Vec<&Path> = dir.ancestors().collect();
    folders.reverse();
    folders.into_iter().find_map(|folder| {
        let wanted = if folder == dir { 0o005 } else { 0o001 };
        let open = fs::metadata(folder).is_ok_and(|metadata| metadata.mode() & wanted == wanted);
        (!open).then(|| folder.to_path_buf())
    })
}

/// Lets users other than the owner read every file and enter every folder
/// below `dir` (for the sandbox user, inside a folder it can reach); only
/// what lacks it is changed, and no executable bit is added to a file.
pub fn grant_read(dir: &Path) -> Result<()> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let metadata = fs::symlink_metadata(&next).with_context(|| format!("reading {}", next.display()))?;
        let wanted = if metadata.is_dir() {
            0o005
        } else if metadata.is_file() {
            0o004
        } else {
            continue;
        };
        let mode = metadata.mode() & 0o7777;
        if mode & wanted != wanted {
            fs::set_permissions(&next, fs::Permissions::from_mode(mode | wanted))
                .with_context(|| format!("letting the sandbox user read {}", next.display()))?;
        }
        if metadata.is_dir() {
            for item in fs::read_dir(&next).with_context(|| format!("listing {}", next.display()))? {
                pending.push(item?.path());
            }
        }
    }
    Ok(())
}

/// An empty file at `path` that only `uid` may write (and root read).
pub fn answer_file(path: &Path, uid: u32) -> Result<()> {
    let _ = fs::remove_file(path);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
        .with_context(|| format!("giving {} to uid {uid}", path.display()))
}

/// Whether `note` is said for the first time in this run (the same
/// limitation holds for every layer; it is said once).
pub fn first_time(note: &str) -> bool {
    static SAID: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    SAID.lock().map_or(true, |mut said| said.insert(note.to_string()))
}

/// Whether what the sandbox user runs can read `path`: anything the tool
/// can when it does not run as root (nobody is switched to), else what
/// others reach.
pub fn sandbox_reaches(path: &Path) -> bool {
    !is_root() || others_reach(path)
}

/// Whether a user who is neither owner nor group can read and enter (or
/// run) `path`, and enter every folder above it.
pub fn others_reach(path: &Path) -> bool {
    let Ok(path) = path.canonicalize() else {
        return false;
    };
    fs::metadata(&path).is_ok_and(|metadata| metadata.mode() & 0o005 == 0o005)
        && path
            .ancestors()
            .skip(1)
            .all(|dir| fs::metadata(dir).is_ok_and(|metadata| metadata.mode() & 0o001 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allow_list_is_kept() {
        let caller = [
            ("PATH", "/usr/bin"),
            ("LANG", "C.UTF-8"),
            ("LC_CTYPE", "C.UTF-8"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("GITHUB_TOKEN", "token"),
            ("PIP_INDEX_URL", "https://index.example/simple"),
            ("HTTPS_PROXY", "http://proxy.example:3128"),
            ("HOME", "caller-home"),
            ("PYTHONPATH", "caller-site"),
        ]
        .map(|(name, value)| (OsString::from(name), OsString::from(value)));
        let names: Vec<String> = kept_environment(caller)
            .into_iter()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "LANG", "LC_CTYPE"]);
    }
}
