//! The cargo lane: the stages that are cargo commands (formatting, the
//! Rust tests and the groups of tests that need a tool), run one after
//! another on a thread of their own while the other stages run on the main
//! one. Most of those wait on processes, servers and the network, so the
//! two lanes share the machine's cores instead of taking turns. The lane's
//! output goes to one log, shown whole when the lane ends: two streams at
//! once would interleave line by line.

use std::ffi::OsString;
use std::fs::{self, File};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use xtask::contain::reaper::{self, Owned};

use crate::provision::{Skipped, TestImage, CONTAINER_TESTS, REGISTRY_TESTS};

/// One cargo command of the lane.
pub struct CargoStage {
    pub name: &'static str,
    /// The stages provisioning can skip that leave this one out too.
    pub needs: &'static [&'static str],
    pub args: &'static [&'static str],
    /// For a group of ignored tests (`needs_engine`, …): its filter, run
    /// with `--ignored` after `args`, and what names its tests when the
    /// group cannot run here.
    pub group: Option<&'static str>,
}

/// The tests that need what `cargo test` cannot have are `#[ignore]`d in
/// `needs_*` modules (docs/architecture.md); the lane runs each group on a
/// machine that has its tool.
const TEST_IT: &[&str] = &["test", "--package", "xtask", "--test", "it", "--"];

pub const CARGO_STAGES: &[CargoStage] = &[
    CargoStage {
        name: "cargo fmt --check",
        needs: &[],
        args: &["fmt", "--all", "--", "--check"],
        group: None,
    },
    CargoStage {
        name: "cargo test",
        needs: &[],
        args: &["test", "--workspace"],
        group: None,
    },
    CargoStage {
        name: "cargo test: needs_runtime",
        needs: &[],
        args: TEST_IT,
        group: Some("needs_runtime"),
    },
    CargoStage {
        name: "cargo test: needs_engine",
        needs: &[CONTAINER_TESTS],
        args: TEST_IT,
        group: Some("needs_engine"),
    },
    // The base images of these tests are built from the test image.
    CargoStage {
        name: "cargo test: needs_registry",
        needs: &[REGISTRY_TESTS, CONTAINER_TESTS],
        args: TEST_IT,
        group: Some("needs_registry"),
    },
];

/// Run on a lane of their own once the main lane's stages are done, beside
/// the end of the cargo lane: the two end closer together. (Cargo holds its
/// build lock only while it compiles, not while tests run.)
pub const LAST_STAGES: &[CargoStage] = &[
    CargoStage {
        name: "cargo test: needs_moto",
        needs: &[],
        args: TEST_IT,
        group: Some("needs_moto"),
    },
    CargoStage {
        name: "cargo test: needs_pypi",
        needs: &[],
        args: TEST_IT,
        group: Some("needs_pypi"),
    },
    // Where provisioning could not install curl, the serve stage's skip
    // names it, and this group is left out with it.
    CargoStage {
        name: "cargo test: needs_curl",
        needs: &[crate::serve::CURL_STAGE],
        args: TEST_IT,
        group: Some("needs_curl"),
    },
];

/// `cargo test --workspace --no-run`, started before provisioning:
/// compiling the tests takes minutes on a fresh clone and needs nothing
/// provisioning brings (packages, images, the runtime client), which waits
/// on the network and on docker. The lane's `cargo test` then finds it
/// compiled (cargo's lock makes it wait for what is still compiling); a
/// compile error is that `cargo test`'s to report, with its output.
pub struct CompileAhead {
    child: std::process::Child,
    _watched: reaper::Watched,
}

impl CompileAhead {
    pub fn start(cargo: &str, root: &Path, log: &Path) -> Result<CompileAhead> {
        if let Some(dir) = log.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(cargo)
            .args(["test", "--workspace", "--no-run"])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {cargo} test --workspace --no-run"))?;
        let watched = reaper::watch(Owned::Tree(child.id()));
        Ok(CompileAhead {
            child,
            _watched: watched,
        })
    }

    /// Ends it (the run ends before the lane starts).
    pub fn stop(mut self) {
        reaper::end(&Owned::Tree(self.child.id()));
        let _ = self.child.wait();
    }

    /// Waits for it, as the lane's running command (so that stopping the
    /// lane ends it); whether it was ended by a signal.
    fn wait(mut self, running: &Mutex<Option<u32>>) -> bool {
        *running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(self.child.id());
        let status = self.child.wait();
        *running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        status.is_ok_and(|status| status.signal().is_some())
    }
}

/// What the lane reports when it ends.
pub struct Ended {
    pub timings: Vec<(&'static str, f64)>,
    /// The groups of tests it could not run, each naming its tests.
    pub not_run: Vec<Skipped>,
    pub failed: Option<anyhow::Error>,
}

/// The lane, running.
pub struct Lane {
    thread: JoinHandle<Ended>,
    /// The cargo command running now, to end if the other lane fails.
    running: Arc<Mutex<Option<u32>>>,
    pub log: PathBuf,
}

/// Where and with what the lane's commands run.
#[derive(Clone)]
pub struct Setting {
    pub cargo: String,
    pub root: PathBuf,
    pub env: Vec<(&'static str, OsString)>,
    pub log: PathBuf,
}

impl Lane {
    pub fn start(
        stages: &'static [CargoStage],
        setting: Setting,
        skipped: &[Skipped],
        test_image: Option<Arc<TestImage>>,
        ahead: Option<CompileAhead>,
    ) -> Result<Lane> {
        let created = setting
            .log
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| File::create(&setting.log).map(drop))
            .with_context(|| format!("creating {}", setting.log.display()));
        if let Err(err) = created {
            if let Some(ahead) = ahead {
                ahead.stop();
            }
            return Err(err);
        }
        let left_out: Vec<(&'static CargoStage, String)> = stages
            .iter()
            .filter_map(|stage| {
                let skip = skipped.iter().find(|skip| stage.needs.contains(&skip.stage))?;
                Some((stage, skip.why.clone()))
            })
            .collect();
        let running = Arc::new(Mutex::new(None));
        let log = setting.log.clone();
        let shared = running.clone();
        let thread = std::thread::spawn(move || {
            // Stopped while the tests compiled (the other lane failed): no stage starts.
            if ahead.is_some_and(|ahead| ahead.wait(&shared)) {
                return Ended {
                    timings: Vec::new(),
                    not_run: Vec::new(),
                    failed: Some(anyhow::anyhow!(
                        "the cargo lane was stopped while the tests compiled"
                    )),
                };
            }
            run(stages, &setting, left_out, test_image.as_deref(), &shared)
        });
        Ok(Lane { thread, running, log })
    }

    /// Ends the command running now (and its tests), then waits for the lane.
    pub fn stop(self) -> Ended {
        let pid = *self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(pid) = pid {
            reaper::end(&Owned::Tree(pid));
        }
        self.wait()
    }

    pub fn wait(self) -> Ended {
        self.thread.join().unwrap_or_else(|_| Ended {
            timings: Vec::new(),
            not_run: Vec::new(),
            failed: Some(anyhow::anyhow!("the cargo lane panicked")),
        })
    }
}

fn run(
    stages: &'static [CargoStage],
    setting: &Setting,
    mut left_out: Vec<(&'static CargoStage, String)>,
    test_image: Option<&TestImage>,
    running: &Mutex<Option<u32>>,
) -> Ended {
    let mut ended = Ended {
        timings: Vec::new(),
        not_run: Vec::new(),
        failed: None,
    };
    for stage in stages {
        if stage.needs.contains(&CONTAINER_TESTS) {
            if let Some(Err(why)) = test_image.map(TestImage::wait) {
                left_out.push((stage, why));
            }
        }
        if left_out.iter().any(|(skipped, _)| std::ptr::eq(*skipped, stage)) {
            continue;
        }
        let started = Instant::now();
        let mut args = stage.args.to_vec();
        if let Some(group) = stage.group {
            // A filter that matches nothing would pass having run nothing.
            if ignored_tests(setting, group).is_empty() {
                ended.failed = Some(anyhow::anyhow!(
                    "ci step `{}` failed: no ignored test is in a `{group}` module",
                    stage.name
                ));
                return ended;
            }
            args.extend(["--ignored", group]);
        }
        if let Err(err) = cargo(setting, stage.name, &args, running) {
            ended.failed = Some(err.context(format!("ci step `{}` failed", stage.name)));
            return ended;
        }
        ended.timings.push((stage.name, started.elapsed().as_secs_f64()));
    }
    for (stage, why) in &left_out {
        let tests = stage
            .group
            .map(|group| ignored_tests(setting, group))
            .unwrap_or_default();
        let names = if tests.is_empty() {
            String::new()
        } else {
            format!(" ({} test(s): {})", tests.len(), tests.join(", "))
        };
        ended.not_run.push(Skipped {
            stage: stage.name,
            why: format!("{why}{names}"),
        });
    }
    ended
}

/// One cargo command with its output in the lane's log, its process group
/// ended if xtask is interrupted.
fn cargo(setting: &Setting, name: &str, args: &[&str], running: &Mutex<Option<u32>>) -> Result<()> {
    let log = append(&setting.log)?;
    use std::io::Write;
    writeln!(&log, "\n==> ci: {name}")?;
    let mut child = Command::new(&setting.cargo)
        .args(args)
        .current_dir(&setting.root)
        .envs(setting.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {} {}", setting.cargo, args.join(" ")))?;
    let _watched = reaper::watch(Owned::Tree(child.id()));
    *running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(child.id());
    let status = child.wait()?;
    *running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    if !status.success() {
        bail!("{} {} exited with {status}", setting.cargo, args.join(" "));
    }
    Ok(())
}

/// The names of a group's ignored tests, as libtest lists them.
fn ignored_tests(setting: &Setting, group: &str) -> Vec<String> {
    let output = Command::new(&setting.cargo)
        .args(TEST_IT)
        .args(["--list", "--ignored", group])
        .current_dir(&setting.root)
        .envs(setting.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Ok(output) = output else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(String::from)
        .collect()
}

fn append(path: &Path) -> Result<File> {
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}
