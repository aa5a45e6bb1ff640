//! Ends what a run started for a function: the runtime's process tree, its
//! container and its layout folder, when the run is done with them and
//! when xtask gets SIGINT or SIGTERM (a process of the function must not
//! outlive the run, nor a copy of its code stay on disk).

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::Duration;

/// One thing to end.
#[derive(Debug, Clone)]
pub enum Owned {
    /// A process group led by this pid, and every descendant of its members.
    Tree(u32),
    /// A container: (engine program, container name).
    Container(String, String),
    /// A folder to remove (made writable first: layouts are read-only).
    Folder(PathBuf),
}

/// What is registered now, by id.
static OWNED: Mutex<Vec<(u64, Owned)>> = Mutex::new(Vec::new());

/// While this lives, [`Owned`] is ended if xtask is interrupted; dropping
/// it only forgets the registration (ending is the owner's job).
pub struct Watched(u64);

/// Registers `owned` to be ended on SIGINT/SIGTERM.
pub fn watch(owned: Owned) -> Watched {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    install_signal_handlers();
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    OWNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push((id, owned));
    Watched(id)
}

impl Drop for Watched {
    fn drop(&mut self) {
        OWNED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|(id, _)| *id != self.0);
    }
}

/// Ends one thing now.
pub fn end(owned: &Owned) {
    match owned {
        Owned::Tree(root) => end_tree(*root),
        Owned::Container(program, name) => {
            let _ = Command::new(program)
                .args(["rm", "--force", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        Owned::Folder(path) => {
            crate::ground::atomic::make_writable(path);
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// The live processes of the tree rooted at `root`: those of its process
/// group (a process the function started stays in it unless it leaves),
/// and every descendant of these (one that made its own group, while its
/// parent still lives).
pub fn tree(root: u32) -> Vec<u32> {
    let processes = processes();
    let mut members: BTreeSet<u32> = processes
        .iter()
        .filter(|process| process.pid == root || process.group == root)
        .map(|process| process.pid)
        .collect();
    loop {
        let before = members.len();
        for process in &processes {
            if members.contains(&process.parent) {
                members.insert(process.pid);
            }
        }
        if members.len() == before {
            break;
        }
    }
    members.into_iter().collect()
}

/// Kills the tree rooted at `root` with SIGKILL, again until none of it is
/// left (a process may fork while it is being killed), for a bounded
/// time.
pub fn end_tree(root: u32) {
    // 0 and 1 are not a tree this run started (kill(0) is our own group).
    if root <= 1 || root == std::process::id() {
        return;
    }
    // SIGKILLed processes are gone (zombies, which `tree` skips) within a
    // scheduling tick: look again soon, then less often, about 0.5 s in all.
    let mut pause = Duration::from_micros(250);
    for _ in 0..60 {
        let mut members = tree(root);
        // Never xtask itself, nor init.
        members.retain(|&pid| pid > 1 && pid != std::process::id());
        if members.is_empty() {
            return;
        }
        // SAFETY: kill(2) has no memory effects; the pids are this tree's.
        unsafe {
            libc::kill(-(root as libc::pid_t), libc::SIGKILL);
            for pid in &members {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

struct Process {
    pid: u32,
    parent: u32,
    group: u32,
}

/// Every process of this host's /proc that is not a zombie (a zombie has
/// ended; only its parent's wait is missing).
fn processes() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces and parentheses: fields
            // count from after its last `)`.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            if fields.first() == Some(&"Z") {
                return None;
            }
            Some(Process {
                pid,
                parent: fields.get(1)?.parse().ok()?,
                group: fields.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

/// The write end of the pipe the signal handler writes to; -1 before.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

/// The handler does only what is async-signal-safe: one write(2) of the
/// signal's number to a pipe. A thread reads it and does the ending.
extern "C" fn on_signal(signal: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` lives for the call.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Once per process: SIGINT and SIGTERM end everything registered, then
/// xtask dies of the signal as it would have without the handler.
fn install_signal_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills the two descriptors it is given.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        // SAFETY: the read end is owned by this File from now on.
        let mut reader = unsafe { fs::File::from_raw_fd(fds[0]) };
        SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
        let spawned = thread::Builder::new()
            .name("xtask-signals".into())
            .spawn(move || {
                let mut signal = [0u8; 1];
                if reader.read_exact(&mut signal).is_err() {
                    return;
                }
                // Held until xtask dies: a thread that is done with what it
                // owns waits here to forget it, and does not exit first.
                let owned = OWNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Containers first (removing one ends its processes and
                // its engine's client), then process trees, then folders,
                // which those processes may be writing into.
                let rank = |owned: &Owned| match owned {
                    Owned::Container(..) => 0,
                    Owned::Tree(_) => 1,
                    Owned::Folder(_) => 2,
                };
                let mut ordered: Vec<&Owned> = owned.iter().map(|(_, owned)| owned).collect();
                ordered.sort_by_key(|owned| rank(owned));
                for owned in ordered {
                    end(owned);
                }
                // SAFETY: restoring the default action and raising the
                // signal again ends the process with that signal.
                unsafe {
                    libc::signal(libc::c_int::from(signal[0]), libc::SIG_DFL);
                    libc::raise(libc::c_int::from(signal[0]));
                }
            });
        if spawned.is_err() {
            return;
        }
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction with a handler that only writes to
            // a pipe; SA_RESTART keeps the other threads' calls going.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}
