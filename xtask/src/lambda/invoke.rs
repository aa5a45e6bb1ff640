//! `invoke`'s work below the command, once its request is checked
//! (`request`): events sent to functions started as the smoke test starts
//! them, one event or every sample event against the local fakes, each
//! judged against the status it expects. It answers with what happened;
//! the command shows it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use xshell::Shell;

use super::fakes::Fakes;
use super::function::{missing_module, missing_module_hint, plan};
use super::launch::Start;
use super::layout::{self, Layout};
use super::request::Request;
use super::runtime_env::{site_for, Runner, RuntimeSite};
use super::samples::{Sample, Verdict};
use super::sandbox::{self, Failure, Init, Sandbox};
use crate::config::manifest::BuiltView;
use crate::config::{Config, Platform};
use crate::ground::error::EnvironmentError;
use crate::ground::progress::{ms, Printer};
use crate::python::installer::InstallerChoice;
use crate::store::tools::{Planned, Tools};

/// What the functions run with: what the run brought up to date, and the
/// tools it found.
pub struct Here<'a> {
    pub config: &'a Config,
    pub sh: &'a Shell,
    pub tools: &'a Tools,
    pub installer: InstallerChoice,
    pub printer: &'a Printer,
    /// Where the functions of each platform run, as the graph chose.
    pub runners: &'a BTreeMap<Platform, Planned<Runner>>,
    pub built: &'a BuiltView<'a>,
}

/// What happened.
pub enum Invoked {
    /// The one event: how the function answered, or how its init failed.
    One {
        function: String,
        answered: Result<Answered, Failure>,
    },
    /// Every sample event: a verdict each, and the functions that cannot
    /// run here (their events skipped).
    All {
        rows: Vec<Verdict>,
        skipped: Vec<String>,
        started: Instant,
    },
}

/// A function's answer to one event, with Lambda's REPORT line.
pub struct Answered {
    pub report_line: String,
    pub result: Result<Vec<u8>, Failure>,
}

/// Sends the event, or every sample event, to the functions of `request`.
pub fn invoke(here: &Here, request: &Request) -> Result<Invoked> {
    let mut platforms = BTreeMap::new();
    for name in &request.functions {
        let platform = here.config.platform_of(&here.config.functions[name]);
        if let std::collections::btree_map::Entry::Vacant(slot) = platforms.entry(platform) {
            slot.insert(ready(here, platform)?);
        }
    }
    let invoker = Invoker {
        here,
        platforms,
        request,
    };
    match &request.event {
        Some(event) => invoker.one(&request.functions[0], event),
        None => invoker.all(),
    }
}

/// What runs the functions of one platform here: the configuration at
/// that platform, its runner and runtime site.
pub struct Ready<'a> {
    pub runner: &'a Runner,
    pub site: RuntimeSite,
    pub config: Config,
}

/// What runs the functions of `platform` here, or why nothing can (`serve`
/// keeps it for as long as it serves).
pub fn ready<'a>(here: &Here<'a>, platform: Platform) -> Result<Result<Ready<'a>, String>> {
    let Some(Planned::Ready(runner)) = here.runners.get(&platform) else {
        return Ok(Err(format!("no way to run {} was chosen", platform.label())));
    };
    let config = here.config.at(platform);
    let progress = here.printer.progress();
    let site = site_for(here.sh, &config, here.tools, here.installer, progress, runner)?;
    if let Err(reason) = &site.client {
        return Ok(Err(reason.clone()));
    }
    Ok(Ok(Ready { runner, site, config }))
}

struct Invoker<'a> {
    here: &'a Here<'a>,
    /// Each platform of the functions to invoke: what runs them, or why
    /// nothing can here.
    platforms: BTreeMap<Platform, Result<Ready<'a>, String>>,
    request: &'a Request,
}

impl Invoker<'_> {
    fn printer(&self) -> &Printer {
        self.here.printer
    }

    /// Starts the function and waits for its init; a failed init is told
    /// as Lambda tells it, with the tool's hint.
    fn start(
        &self,
        name: &str,
        env: &[(String, String)],
        forward_logs: bool,
    ) -> Result<Result<(Sandbox, f64, Layout), Failure>> {
        let ready = self.ready(name)?;
        let config = &ready.config;
        let built = self.here.built;
        let plan = plan(built.manifest, name)?;
        let layout = layout::lay_out(config, &plan, &self.request.layers)?;
        let start = Start {
            config,
            runner: ready.runner,
            site: &ready.site,
            plan: &plan,
            env,
            forward_logs,
            label_logs: false,
        };
        let mut running = sandbox::start(&start, &layout)?;
        for note in &running.notes {
            self.printer().info(&format!("{name}: {note}"));
        }
        Ok(match running.init() {
            Init::Ready { init_ms } => Ok((running, init_ms, layout)),
            Init::Failed(mut failure) => {
                if let Some(missing) = missing_module(&failure) {
                    let (hint, _) = missing_module_hint(&plan, &missing, &built.providers, &ready.site);
                    failure.message = format!("{}; {hint}", failure.message);
                }
                Err(failure)
            }
        })
    }

    /// What runs `function` here; a usage-level error when nothing can.
    fn ready(&self, function: &str) -> Result<&Ready<'_>> {
        let config = self.here.config;
        let platform = config.platform_of(&config.functions[function]);
        match self.platforms.get(&platform) {
            Some(Ok(ready)) => Ok(ready),
            Some(Err(reason)) => Err(EnvironmentError::new(format!(
                "invoke: `{function}` ({} {}) cannot run here: {reason}",
                platform.runtime.name,
                platform.arch.name()
            ))
            .into()),
            None => Err(EnvironmentError::new(format!("invoke: `{function}` was not planned")).into()),
        }
    }

    fn one(&self, name: &str, event: &[u8]) -> Result<Invoked> {
        let function = &self.here.config.functions[name];
        let answered = match self.start(name, &self.request.env, true)? {
            Err(failure) => Err(failure),
            Ok((mut running, init_ms, _layout)) => {
                let answer = running.invoke(event, Duration::from_secs(function.deploy.timeout_s));
                let memory = running.max_memory_mb();
                drop(running);
                Ok(Answered {
                    report_line: answer.report_line(function.deploy.memory_mb, memory, Some(init_ms)),
                    result: answer.result,
                })
            }
        };
        let function = name.to_string();
        Ok(Invoked::One { function, answered })
    }

    fn all(&self) -> Result<Invoked> {
        let started = Instant::now();
        let here = self.here;
        let fakes = Fakes::start(here.sh, here.config, here.installer, here.printer)?;
        self.printer()
            .detail(&format!("invoke: fakes ready after {:.1?}", started.elapsed()));
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        for (name, samples) in &self.request.samples {
            if let Err(err) = self.ready(name) {
                // Counted and named, not passed: another machine can run it.
                self.printer()
                    .warn(&format!("{err:#}; its {} event(s) are skipped", samples.len()));
                skipped.push(name.clone());
                continue;
            }
            let mut env = fakes.env.get(name).cloned().unwrap_or_default();
            env.extend(self.request.env.iter().cloned());
            rows.extend(self.samples_of(name, samples, &env, started)?);
        }
        let stopping = Instant::now();
        drop(fakes);
        self.printer()
            .detail(&format!("invoke: fakes stopped in {:.1?}", stopping.elapsed()));
        Ok(Invoked::All {
            rows,
            skipped,
            started,
        })
    }

    /// The sample events of one function, through one runtime while it
    /// answers.
    fn samples_of(
        &self,
        name: &str,
        samples: &[Sample],
        env: &[(String, String)],
        started: Instant,
    ) -> Result<Vec<Verdict>> {
        let function = &self.here.config.functions[name];
        let mut rows = Vec::new();
        let mut current: Option<(Sandbox, Layout)> = None;
        for sample in samples {
            if current.is_none() {
                match self.start(name, env, false)? {
                    Ok((running, init_ms, layout)) => {
                        self.printer().detail(&format!(
                            "{name}: init {} (at {:.1?})",
                            ms(Some(init_ms)),
                            started.elapsed()
                        ));
                        current = Some((running, layout));
                    }
                    Err(failure) => {
                        let error = format!("{}: {}", failure.error_type, failure.message);
                        rows.push(Verdict::init_failed(name, sample, error));
                        continue;
                    }
                }
            }
            let (running, _) = current.as_mut().expect("started above");
            let answer = running.invoke(&sample.body, Duration::from_secs(function.deploy.timeout_s));
            let row = Verdict::judge(name, sample, &answer, &running.log_tail());
            if answer.result.is_err() {
                // A timed-out or crashed runtime is not reused; the next
                // event starts a fresh one.
                current = None;
            }
            rows.push(row);
        }
        Ok(rows)
    }
}
