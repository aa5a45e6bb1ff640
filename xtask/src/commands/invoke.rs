//! `cargo xtask invoke FUNCTION [--event FILE|-]` and `invoke --all`: runs
//! the packaged functions (brought up to date first) under AWS's runtime
//! interface client and sends them events; `--all` sends every sample event
//! of `lambdas/events/` against local fakes and checks the expected status.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::Options;
use crate::commands::drive::{drive, Finished};
use crate::config::manifest::BuiltView;
use crate::config::Config;
use crate::config::Platform;
use crate::error::{EnvironmentError, UsageError};
use crate::facts;
use crate::graph::{Graph, Session};
use crate::lambda::fakes::Fakes;
use crate::lambda::function::{missing_module, missing_module_hint, plan};
use crate::lambda::launch::Start;
use crate::lambda::layout::{self, Layout};
use crate::lambda::runtime_env::{site_for, Runner, RuntimeSite};
use crate::lambda::samples::{self, Sample, Verdict};
use crate::lambda::sandbox::{self, Failure, Init, Sandbox};
use crate::progress::{ms, Printer};
use crate::report::render;
use crate::store::tools::Planned;

/// What `invoke` was asked, checked before anything is built.
struct Request {
    functions: Vec<String>,
    /// `None`: `--all`, the sample events; else the one event.
    event: Option<Vec<u8>>,
    samples: BTreeMap<String, Vec<Sample>>,
    env: Vec<(String, String)>,
    layers: BTreeMap<String, PathBuf>,
}

pub fn run(options: &Options, names: &[String]) -> Result<()> {
    let request: OnceCell<Request> = OnceCell::new();
    drive(
        options,
        |config, graph| {
            let _ = request.set(parse(config, options, names)?);
            // Every product: dist/manifest.json is written only whole.
            Ok(graph
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, node)| node.kind.is_product())
                .map(|(index, _)| index)
                .collect())
        },
        |session, graph, outcome| {
            let request = request.get().expect("parsed before the run");
            if !outcome.missing.is_empty() {
                return Ok(Finished { failed: true });
            }
            let built = BuiltView::new(&outcome.manifest, session.config);
            let mut platforms = BTreeMap::new();
            for name in &request.functions {
                let platform = session.config.platform_of(&session.config.functions[name]);
                if let std::collections::btree_map::Entry::Vacant(slot) = platforms.entry(platform) {
                    slot.insert(ready(session, graph, platform)?);
                }
            }
            let invoker = Invoker {
                session,
                platforms,
                built: &built,
                request,
            };
            match &request.event {
                Some(event) => invoker.one(&request.functions[0], event),
                None => invoker.all(),
            }
        },
    )
}

/// What runs the functions of one platform here, or why nothing can.
struct Ready<'a> {
    runner: &'a Runner,
    site: RuntimeSite,
    config: Config,
}

fn ready<'a>(session: &Session, graph: &'a Graph, platform: Platform) -> Result<Result<Ready<'a>, String>> {
    let Some(Planned::Ready(runner)) = graph.runners.get(&platform) else {
        return Ok(Err(format!("no way to run {} was chosen", platform.label())));
    };
    let config = session.config.at(platform);
    let (sh, tools, progress) = (&session.sh, &session.tools, session.printer.progress());
    let site = site_for(sh, &config, tools, session.settings.installer, progress, runner)?;
    if let Err(reason) = &site.client {
        return Ok(Err(reason.clone()));
    }
    Ok(Ok(Ready { runner, site, config }))
}

fn parse(config: &Config, options: &Options, names: &[String]) -> Result<Request> {
    let usage = |message: String| -> anyhow::Error { UsageError::new(message).into() };
    if options.all != names.is_empty() || names.len() > 1 {
        return Err(usage(
            "invoke takes one FUNCTION, or --all (see cargo xtask invoke --help)".to_string(),
        ));
    }
    if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
        let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
        return Err(usage(format!(
            "unknown function `{unknown}` (configured: {})",
            known.join(", ")
        )));
    }
    let mut env = Vec::new();
    for pair in &options.env {
        let Some((name, value)) = pair.split_once('=').filter(|(name, _)| !name.is_empty()) else {
            return Err(usage(format!("--env: `{pair}` is not KEY=VALUE")));
        };
        env.push((name.to_string(), value.to_string()));
    }
    let mut layers = BTreeMap::new();
    for pair in &options.layers {
        let Some((name, zip)) = pair.split_once('=') else {
            return Err(usage(format!("--layer: `{pair}` is not NAME=ZIP")));
        };
        if !config.layers.contains_key(name) {
            return Err(usage(format!("--layer: no layer `{name}` is configured")));
        }
        // As the user typed it: from the current folder.
        let zip = std::env::current_dir()?.join(zip);
        if !zip.is_file() {
            return Err(usage(format!("--layer: {} is not a file", zip.display())));
        }
        layers.insert(name.to_string(), zip);
    }
    if options.all {
        if options.event.is_some() {
            return Err(usage(
                "--event goes with one FUNCTION, not with --all".to_string(),
            ));
        }
        let samples = samples::load(config)?;
        for (function, events) in &samples {
            for sample in events {
                let file = format!("{}/{function}/{}.json", config.events.display(), sample.name);
                within_event_limit(&file, sample.body.len() as u64)?;
            }
        }
        return Ok(Request {
            functions: samples.keys().cloned().collect(),
            event: None,
            samples,
            env,
            layers,
        });
    }
    let event = match options.event.as_deref() {
        None => b"{}".to_vec(),
        Some("-") => {
            // One byte more than the limit is enough to refuse it.
            let mut bytes = Vec::new();
            std::io::stdin()
                .take(facts::MAX_SYNC_EVENT_BYTES + 1)
                .read_to_end(&mut bytes)
                .context("reading the event from stdin")?;
            if bytes.len() as u64 > facts::MAX_SYNC_EVENT_BYTES {
                return Err(usage(format!(
                    "--event -: the event on stdin is over Lambda's limit of {} bytes for a synchronous invocation (RequestTooLargeException): make it smaller",
                    facts::MAX_SYNC_EVENT_BYTES
                )));
            }
            bytes
        }
        Some(file) => {
            let path = PathBuf::from(file);
            let cannot_read =
                |err: std::io::Error| usage(format!("--event: cannot read {}: {err}", path.display()));
            within_event_limit(file, std::fs::metadata(&path).map_err(cannot_read)?.len())?;
            let bytes = std::fs::read(&path).map_err(cannot_read)?;
            within_event_limit(file, bytes.len() as u64)?;
            bytes
        }
    };
    samples::json(options.event.as_deref().unwrap_or("the event"), &event)?;
    Ok(Request {
        functions: names.to_vec(),
        event: Some(event),
        samples: BTreeMap::new(),
        env,
        layers,
    })
}

/// Lambda refuses a synchronous invocation whose event is over its limit
/// before the function runs (`RequestTooLargeException`); so does `invoke`.
fn within_event_limit(file: &str, size: u64) -> Result<()> {
    let limit = facts::MAX_SYNC_EVENT_BYTES;
    if size <= limit {
        return Ok(());
    }
    Err(UsageError::new(format!(
        "{file}: the event is {size} bytes, over Lambda's limit of {limit} bytes for a synchronous invocation (RequestTooLargeException): make it smaller"
    ))
    .into())
}

struct Invoker<'a> {
    session: &'a Session<'a>,
    /// Each platform of the functions to invoke: what runs them, or why
    /// nothing can here.
    platforms: BTreeMap<Platform, Result<Ready<'a>, String>>,
    built: &'a BuiltView<'a>,
    request: &'a Request,
}

impl Invoker<'_> {
    fn printer(&self) -> &Printer {
        self.session.printer
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
        let plan = plan(self.built.manifest, name)?;
        let layout = layout::lay_out(config, &plan, &self.request.layers)?;
        let start = Start {
            config,
            runner: ready.runner,
            site: &ready.site,
            plan: &plan,
            env,
            forward_logs,
        };
        let mut running = sandbox::start(&start, &layout)?;
        for note in &running.notes {
            self.printer().info(&format!("{name}: {note}"));
        }
        Ok(match running.init() {
            Init::Ready { init_ms } => Ok((running, init_ms, layout)),
            Init::Failed(mut failure) => {
                if let Some(missing) = missing_module(&failure) {
                    let (hint, _) = missing_module_hint(&plan, &missing, &self.built.providers, &ready.site);
                    failure.message = format!("{}; {hint}", failure.message);
                }
                Err(failure)
            }
        })
    }

    /// What runs `function` here; a usage-level error when nothing can.
    fn ready(&self, function: &str) -> Result<&Ready<'_>> {
        let config = self.session.config;
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

    fn one(&self, name: &str, event: &[u8]) -> Result<Finished> {
        let function = &self.session.config.functions[name];
        let env = self.request.env.clone();
        let (mut running, init_ms, _layout) = match self.start(name, &env, true)? {
            Ok(started) => started,
            Err(failure) => {
                self.printer().out(&serde_json::to_string(&failure)?);
                self.printer()
                    .error(&format!("{name}: {}: {}", failure.error_type, failure.message));
                return Ok(Finished { failed: true });
            }
        };
        let answer = running.invoke(event, Duration::from_secs(function.deploy.timeout_s));
        let memory = running.max_memory_mb();
        drop(running);
        eprintln!(
            "{}",
            answer.report_line(function.deploy.memory_mb, memory, Some(init_ms))
        );
        match &answer.result {
            Ok(body) => {
                self.printer().out(&String::from_utf8_lossy(body));
                Ok(Finished { failed: false })
            }
            Err(failure) => {
                self.printer().out(&serde_json::to_string(failure)?);
                self.printer()
                    .error(&format!("{name}: {}: {}", failure.error_type, failure.message));
                Ok(Finished { failed: true })
            }
        }
    }

    fn all(&self) -> Result<Finished> {
        let started = Instant::now();
        let session = self.session;
        let fakes = Fakes::start(
            &session.sh,
            session.config,
            session.settings.installer,
            session.printer,
        )?;
        self.printer()
            .detail(&format!("invoke: fakes ready after {:.1?}", started.elapsed()));
        let mut rows = Vec::new();
        let mut skipped = Vec::new();
        for (name, samples) in &self.request.samples {
            let function = &self.session.config.functions[name];
            if let Err(err) = self.ready(name) {
                // Counted and named, not passed: another machine can run it.
                self.printer()
                    .warn(&format!("{err:#}; its {} event(s) are skipped", samples.len()));
                skipped.push(name.clone());
                continue;
            }
            let mut env = fakes.env.get(name).cloned().unwrap_or_default();
            env.extend(self.request.env.iter().cloned());
            let mut current: Option<(Sandbox, Layout)> = None;
            for sample in samples {
                if current.is_none() {
                    match self.start(name, &env, false)? {
                        Ok((running, init_ms, layout)) => {
                            self.printer().detail(&format!(
                                "{name}: init {} (at {:.1?})",
                                ms(Some(init_ms)),
                                started.elapsed()
                            ));
                            current = Some((running, layout));
                        }
                        Err(failure) => {
                            rows.push(Verdict::init_failed(
                                name,
                                sample,
                                format!("{}: {}", failure.error_type, failure.message),
                            ));
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
        }
        let stopping = Instant::now();
        drop(fakes);
        self.printer()
            .detail(&format!("invoke: fakes stopped in {:.1?}", stopping.elapsed()));
        let failed = rows.iter().filter(|row| row.error.is_some()).count();
        self.printer().info(&render::invoke_table(&rows));
        for row in rows.iter().filter(|row| row.error.is_some()) {
            self.printer().error(&format!(
                "{} {}: {}",
                row.function,
                row.event,
                row.error.as_deref().unwrap_or_default()
            ));
        }
        let skipped_note = if skipped.is_empty() {
            String::new()
        } else {
            format!("; skipped: {} (cannot run here)", skipped.join(", "))
        };
        self.printer().info(&format!(
            "invoke: {} of {} event(s) answered as expected in {:.1?}{skipped_note}",
            rows.len() - failed,
            rows.len(),
            started.elapsed()
        ));
        Ok(Finished { failed: failed > 0 })
    }
}
