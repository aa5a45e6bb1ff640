//! Warm execution environments, as Lambda keeps them: one per function is
//! started on its first request and reused by the next ones; a request
//! that finds every environment busy starts another, up to the function's
//! `reserved_concurrency` (beyond it: throttled, as Lambda throttles) or
//! [`LOCAL_ENVIRONMENTS`] without one (beyond it: the request waits). An
//! environment that timed out or whose runtime ended is not reused.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use super::gateway::{Functions, Invoked};
use crate::config::Config;
use crate::contain::reaper::{self, Owned, Watched};
use crate::ground::atomic::TempDir;
use crate::lambda::function::{missing_module, missing_module_hint};
use crate::lambda::launch::Start;
use crate::lambda::layout::{self, Layout};
use crate::lambda::runtime_env::{FunctionPlan, Runner, RuntimeSite};
use crate::lambda::sandbox::{self, Failure, Init, Sandbox};

/// Without `reserved_concurrency`, how many environments of one function
/// run at once here: Lambda's own ceiling is the account's (1,000), far
/// beyond what one machine should start for a local API.
pub const LOCAL_ENVIRONMENTS: usize = 16;

/// What runs the functions of one platform: the configuration at that
/// platform, where the runtime runs, and its site (boto3, the client).
pub struct Runs {
    pub config: Config,
    pub runner: Runner,
    pub site: RuntimeSite,
    /// Modules the runtime provides, for the hint on a missing module.
    pub providers: BTreeMap<String, Vec<String>>,
}

/// One function as a generation of the build has it.
#[derive(Clone)]
pub struct Spec {
    /// What its environments hold: the SHA-256 of its ZIP and of each
    /// layer in order, as the manifest records them.
    pub content: Vec<String>,
    /// Its ZIP and layers, pointing at the generation's own copies.
    pub plan: FunctionPlan,
    /// The fakes' variables and `--env`'s, after the function's own.
    pub env: Vec<(String, String)>,
    pub reserved: Option<u64>,
}

impl Spec {
    /// Whether an environment of `other` runs exactly what one of this
    /// would: then a reload keeps it.
    pub fn same_as(&self, other: &Spec) -> bool {
        let run = |spec: &Spec| {
            (
                spec.plan.handler.clone(),
                spec.plan.memory_mb,
                spec.plan.environment.clone(),
            )
        };
        self.content == other.content
            && self.env == other.env
            && self.reserved == other.reserved
            && run(self) == run(other)
    }
}

/// An environment between two invocations. Its runtime is stopped before
/// its folders are removed (fields drop in order).
struct Warm {
    sandbox: Box<Sandbox>,
    _layout: Layout,
}

#[derive(Default)]
struct Slots {
    idle: Vec<Warm>,
    /// Environments started and not ended, idle or busy.
    live: usize,
    /// How many were ever started, to number them in the log.
    started: usize,
}

/// The environments of one function.
pub struct Pool {
    pub spec: Spec,
    runs: Arc<Runs>,
    slots: Mutex<Slots>,
    freed: Condvar,
    /// Its own links to the ZIPs it runs: a later build rewrites dist/,
    /// not these (dropped last, after the environments; removed on
    /// SIGINT/SIGTERM too).
    _files: (Watched, TempDir),
}

/// What a request gets from the pool.
enum Taken {
    Warm(Warm),
    /// A slot is held for an environment to start.
    Start(usize),
    Throttled,
}

impl Pool {
    /// The pool of `spec`, whose ZIPs (repository-relative, as the
    /// manifest names them) are linked into a folder of its own under
    /// `dir`: call it while the build that wrote them holds the lock.
    pub fn new(mut spec: Spec, runs: Arc<Runs>, dir: &Path) -> Result<Pool> {
        let files = TempDir::beside(&dir.join(&spec.plan.name))?;
        let watched = reaper::watch(Owned::Folder(files.path().to_path_buf()));
        let root = runs.config.root.clone();
        let keep = |zip: &str, n: usize| -> Result<String> {
            let kept = files.path().join(format!("{n}.zip"));
            let from = root.join(zip);
            fs::hard_link(&from, &kept)
                .or_else(|_| fs::copy(&from, &kept).map(|_| ()))
                .with_context(|| format!("keeping {} for `serve`", from.display()))?;
            Ok(kept.to_string_lossy().into_owned())
        };
        spec.plan.zip = keep(&spec.plan.zip, 0)?;
        for (n, layer) in spec.plan.layers.iter_mut().enumerate() {
            if let Some(zip) = &layer.zip {
                layer.zip = Some(keep(zip, n + 1)?);
            }
        }
        Ok(Pool {
            spec,
            runs,
            slots: Mutex::default(),
            freed: Condvar::new(),
            _files: (watched, files),
        })
    }

    fn name(&self) -> &str {
        &self.spec.plan.name
    }

    fn limit(&self) -> (usize, bool) {
        match self.spec.reserved {
            Some(reserved) => (reserved as usize, true),
            None => (LOCAL_ENVIRONMENTS, false),
        }
    }

    fn take(&self) -> Taken {
        let (limit, throttles) = self.limit();
        let mut slots = self.slots.lock().expect("pool");
        loop {
            if let Some(warm) = slots.idle.pop() {
                return Taken::Warm(warm);
            }
            if slots.live < limit {
                slots.live += 1;
                slots.started += 1;
                return Taken::Start(slots.started);
            }
            if throttles {
                return Taken::Throttled;
            }
            slots = self.freed.wait(slots).expect("pool");
        }
    }

    fn give_back(&self, warm: Option<Warm>) {
        let mut slots = self.slots.lock().expect("pool");
        match warm {
            Some(warm) => slots.idle.push(warm),
            None => slots.live -= 1,
        }
        self.freed.notify_one();
    }

    /// Starts an environment and waits for its init; the init duration is
    /// logged once, as Lambda reports it on the first invocation.
    fn start(&self, number: usize) -> Result<Warm, Failure> {
        let runs = &self.runs;
        let no_stand_ins = BTreeMap::<String, PathBuf>::new();
        let layout = layout::lay_out(&runs.config, &self.spec.plan, &no_stand_ins)
            .map_err(|err| Failure::new("Serve.LayoutError", format!("{err:#}")))?;
        let start = Start {
            config: &runs.config,
            runner: &runs.runner,
            site: &runs.site,
            plan: &self.spec.plan,
            env: &self.spec.env,
            forward_logs: true,
            label_logs: true,
        };
        let mut sandbox = sandbox::start(&start, &layout)
            .map_err(|err| Failure::new("Serve.StartError", format!("{err:#}")))?;
        match sandbox.init() {
            Init::Ready { init_ms } => {
                eprintln!(
                    "[{}] environment {number} ready: Init Duration: {init_ms:.2} ms",
                    self.name()
                );
                Ok(Warm {
                    sandbox: Box::new(sandbox),
                    _layout: layout,
                })
            }
            Init::Failed(mut failed) => {
                if let Some(missing) = missing_module(&failed) {
                    let (hint, _) =
                        missing_module_hint(&self.spec.plan, &missing, &runs.providers, &runs.site);
                    failed.message = format!("{}; {hint}", failed.message);
                }
                eprintln!(
                    "[{}] init failed: {}: {}",
                    self.name(),
                    failed.error_type,
                    failed.message
                );
                Err(failed)
            }
        }
    }

    /// Starts one environment ahead of the first request (a reload), so
    /// that the new code answers without an init in the way.
    pub fn prewarm(&self) -> Result<(), Failure> {
        let Taken::Start(number) = self.take() else {
            return Ok(());
        };
        let started = self.start(number);
        let ok = started.as_ref().map(|_| ()).map_err(Clone::clone);
        self.give_back(started.ok());
        ok
    }

    /// One invocation in a warm environment (or a new one).
    pub fn invoke(&self, event: &[u8], timeout: Duration) -> Invoked {
        let mut warm = match self.take() {
            Taken::Warm(warm) => warm,
            Taken::Throttled => return Invoked::Throttled,
            Taken::Start(number) => match self.start(number) {
                Ok(warm) => warm,
                Err(failed) => {
                    self.give_back(None);
                    return Invoked::Failed {
                        error_type: failed.error_type,
                        message: failed.message,
                    };
                }
            },
        };
        let answer = warm.sandbox.invoke(event, timeout);
        let ended = warm.sandbox.ended();
        self.give_back((!ended).then_some(warm));
        match answer.result {
            Ok(body) => Invoked::Answer(body),
            Err(failed) if failed.error_type == "Sandbox.Timedout" => {
                eprintln!("[{} {}] {}", self.name(), answer.request_id, failed.message);
                Invoked::TimedOut
            }
            Err(failed) => {
                eprintln!(
                    "[{} {}] {}: {}",
                    self.name(),
                    answer.request_id,
                    failed.error_type,
                    failed.message
                );
                Invoked::Failed {
                    error_type: failed.error_type,
                    message: failed.message,
                }
            }
        }
    }
}

/// The functions of one generation of the build, by name.
#[derive(Default)]
pub struct Pools(pub BTreeMap<String, Arc<Pool>>);

impl Functions for Pools {
    fn invoke(&self, function: &str, _request_id: &str, event: &[u8], timeout: Duration) -> Invoked {
        match self.0.get(function) {
            Some(pool) => pool.invoke(event, timeout),
            None => Invoked::Failed {
                error_type: "Serve.NotServed".to_string(),
                message: format!("`{function}` is not served (not named on the command line)"),
            },
        }
    }
}
