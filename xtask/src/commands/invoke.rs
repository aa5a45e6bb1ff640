//! `cargo xtask invoke FUNCTION [--event FILE|-]` and `invoke --all`: runs
//! the packaged functions (brought up to date first) under AWS's runtime
//! interface client and sends them events; `--all` sends every sample event
//! of `lambdas/events/` against local fakes and checks the expected status.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::cli::Options;
use crate::config::Config;
use crate::drive::{drive, Finished};
use crate::error::{EnvironmentError, UsageError};
use crate::facts;
use crate::graph::{Graph, Session};
use crate::manifest::BuiltView;
use crate::progress::{ms, Printer};
use crate::steps::runtime_env::{runtime_site, Runner, RuntimeSite};
use crate::steps::sandbox::{self, Answer, Failure, Init, Sandbox, Start};
use crate::steps::smoke::{missing_module, missing_module_hint, plan};
use crate::tools::Planned;

/// What `invoke` was asked, checked before anything is built.
struct Request {
    functions: Vec<String>,
    /// `None`: `--all`, the sample events; else the one event.
    event: Option<Vec<u8>>,
    samples: BTreeMap<String, Vec<Sample>>,
    env: Vec<(String, String)>,
    layers: BTreeMap<String, PathBuf>,
}

/// One sample event and what it must answer.
struct Sample {
    name: String,
    body: Vec<u8>,
    expect: Value,
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
            let runner = runner(graph)?;
            let site = runtime_site(
                &session.sh,
                session.config,
                &session.tools,
                session.options.installer,
                session.printer.progress(),
            )?;
            if let Err(reason) = &site.client {
                return Err(EnvironmentError::new(format!("invoke: cannot run here: {reason}")).into());
            }
            let invoker = Invoker {
                session,
                runner,
                site: &site,
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

fn runner(graph: &Graph) -> Result<&Runner> {
    match &graph.runner {
        Some(Planned::Ready(Runner::Skip(reason))) => {
            Err(EnvironmentError::new(format!("invoke: cannot run here: {reason}")).into())
        }
        Some(Planned::Ready(runner)) => Ok(runner),
        _ => Err(EnvironmentError::new("invoke: no function to run").into()),
    }
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
        let zip = config.root.join(zip);
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
        let samples = samples(config)?;
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
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading the event from stdin")?;
            bytes
        }
        Some(file) => {
            let path = config.root.join(file);
            std::fs::read(&path)
                .map_err(|err| usage(format!("--event: cannot read {}: {err}", path.display())))?
        }
    };
    json(options.event.as_deref().unwrap_or("the event"), &event)?;
    Ok(Request {
        functions: names.to_vec(),
        event: Some(event),
        samples: BTreeMap::new(),
        env,
        layers,
    })
}

/// The bytes as JSON, or a usage error naming the file and the line.
fn json(file: &str, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|err| {
        UsageError::new(format!(
            "{file}: not JSON: line {} column {}: {err}",
            err.line(),
            err.column()
        ))
        .into()
    })
}

/// `<events>/<function>/<name>.json` with `<events>/<function>/expect.json`
/// naming each one's expected status (or the authorizer's policy effect).
fn samples(config: &Config) -> Result<BTreeMap<String, Vec<Sample>>> {
    let root = config.root.join(&config.events);
    let mut all = BTreeMap::new();
    for function in config.functions.keys() {
        let dir = root.join(function);
        if !dir.is_dir() {
            continue;
        }
        let label = |name: &str| format!("{}/{function}/{name}", config.events.display());
        let expect_path = dir.join("expect.json");
        let expect_bytes = std::fs::read(&expect_path).map_err(|err| {
            UsageError::new(format!(
                "{}: {err} (every events folder has one: {{\"<event>\": <status>}})",
                label("expect.json")
            ))
        })?;
        let Value::Object(mut expect) = json(&label("expect.json"), &expect_bytes)? else {
            return Err(UsageError::new(format!("{}: not an object", label("expect.json"))).into());
        };
        let mut samples = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .filter(|path| path.file_name().is_some_and(|name| name != "expect.json"))
            .collect();
        files.sort();
        for file in files {
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let body = std::fs::read(&file)?;
            json(&label(&format!("{name}.json")), &body)?;
            let Some(expected) = expect.remove(&name) else {
                return Err(UsageError::new(format!(
                    "{}: no expectation for event `{name}` (add \"{name}\": <status>)",
                    label("expect.json")
                ))
                .into());
            };
            samples.push(Sample {
                name,
                body,
                expect: expected,
            });
        }
        if let Some(stray) = expect.keys().next() {
            return Err(UsageError::new(format!(
                "{}: `{stray}` has no event file {stray}.json",
                label("expect.json")
            ))
            .into());
        }
        all.insert(function.clone(), samples);
    }
    if all.is_empty() {
        return Err(UsageError::new(format!(
            "no sample events: add {}/<function>/<name>.json and expect.json",
            config.events.display()
        ))
        .into());
    }
    Ok(all)
}

struct Invoker<'a> {
    session: &'a Session<'a>,
    runner: &'a Runner,
    site: &'a RuntimeSite,
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
    ) -> Result<Result<(Sandbox, f64, sandbox::Layout), Failure>> {
        let config = self.session.config;
        let plan = plan(self.built.manifest, name)?;
        let layout = sandbox::lay_out(config, &plan, &self.request.layers)?;
        let start = Start {
            config,
            runner: self.runner,
            site: self.site,
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
                    let (hint, _) = missing_module_hint(&plan, &missing, &self.built.providers, self.site);
                    failure.message = format!("{}; {hint}", failure.message);
                }
                Err(failure)
            }
        })
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
        let answer = running.invoke(event, Duration::from_secs(function.timeout_s));
        let memory = running.max_memory_mb();
        drop(running);
        eprintln!("{}", report_line(&answer, memory, Some(init_ms)));
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
        let fakes = Fakes::start(self.session)?;
        self.printer()
            .detail(&format!("invoke: fakes ready after {:.1?}", started.elapsed()));
        let mut rows = Vec::new();
        for (name, samples) in &self.request.samples {
            let function = &self.session.config.functions[name];
            let mut env = fakes.env.get(name).cloned().unwrap_or_default();
            env.extend(self.request.env.iter().cloned());
            let mut current: Option<(Sandbox, sandbox::Layout)> = None;
            for sample in samples {
                let mut init = None;
                if current.is_none() {
                    match self.start(name, &env, false)? {
                        Ok((running, init_ms, layout)) => {
                            self.printer().detail(&format!(
                                "{name}: init {} (at {:.1?})",
                                ms(Some(init_ms)),
                                started.elapsed()
                            ));
                            init = Some(init_ms);
                            current = Some((running, layout));
                        }
                        Err(failure) => {
                            rows.push(Row::failed(
                                name,
                                sample,
                                format!("{}: {}", failure.error_type, failure.message),
                            ));
                            continue;
                        }
                    }
                }
                let (running, _) = current.as_mut().expect("started above");
                let answer = running.invoke(&sample.body, Duration::from_secs(function.timeout_s));
                let row = Row::judge(name, sample, &answer, init, running);
                if answer.result.is_err() {
                    // A timed-out or crashed runtime is not reused.
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
        let mut table = String::from(
            "\n  function     event                      expected  got       time      verdict\n",
        );
        for row in &rows {
            table.push_str(&format!(
                "  {:<12} {:<26} {:<9} {:<9} {:>8}  {}\n",
                row.function,
                row.event,
                row.expected,
                row.got,
                ms(row.duration_ms),
                if row.error.is_some() { "FAILED" } else { "ok" }
            ));
        }
        self.printer().info(&table);
        for row in rows.iter().filter(|row| row.error.is_some()) {
            self.printer().error(&format!(
                "{} {}: {}",
                row.function,
                row.event,
                row.error.as_deref().unwrap_or_default()
            ));
        }
        self.printer().info(&format!(
            "invoke: {} of {} event(s) answered as expected in {:.1?}",
            rows.len() - failed,
            rows.len(),
            started.elapsed()
        ));
        Ok(Finished { failed: failed > 0 })
    }
}

/// Lambda's REPORT line.
fn report_line(answer: &Answer, memory: Option<u64>, init_ms: Option<f64>) -> String {
    let mut line = format!(
        "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
        answer.request_id,
        answer.duration_ms,
        answer.duration_ms.ceil() as u64,
        facts::DEFAULT_MEMORY_MB,
        memory.map_or("?".to_string(), |mb| mb.to_string()),
    );
    if let Some(init) = init_ms {
        line.push_str(&format!("\tInit Duration: {init:.2} ms"));
    }
    line
}

/// One line of `invoke --all`'s table.
struct Row {
    function: String,
    event: String,
    expected: String,
    got: String,
    duration_ms: Option<f64>,
    error: Option<String>,
}

impl Row {
    fn failed(function: &str, sample: &Sample, error: String) -> Row {
        Row {
            function: function.to_string(),
            event: sample.name.clone(),
            expected: show(&sample.expect),
            got: "init error".to_string(),
            duration_ms: None,
            error: Some(error),
        }
    }

    fn judge(function: &str, sample: &Sample, answer: &Answer, _init: Option<f64>, running: &Sandbox) -> Row {
        let mut row = Row {
            function: function.to_string(),
            event: sample.name.clone(),
            expected: show(&sample.expect),
            got: String::new(),
            duration_ms: Some(answer.duration_ms),
            error: None,
        };
        match &answer.result {
            Err(failure) => {
                row.got = "error".to_string();
                let tail = running.log_tail();
                let mut error = format!("{}: {}", failure.error_type, failure.message);
                if !tail.is_empty() {
                    error = format!("{error}\n    {}", tail.join("\n    "));
                }
                row.error = Some(error);
            }
            Ok(body) => {
                let response: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let got = match &sample.expect {
                    Value::String(_) => response["policyDocument"]["Statement"][0]["Effect"].clone(),
                    _ => response["statusCode"].clone(),
                };
                row.got = show(&got);
                if got != sample.expect {
                    let body = String::from_utf8_lossy(body);
                    let short: String = body.chars().take(300).collect();
                    row.error = Some(format!(
                        "expected {}, got {}: {short}",
                        show(&sample.expect),
                        row.got
                    ));
                }
            }
        }
        row
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The local world of `invoke --all`: `<events>/fakes.py`, run with the
/// development virtualenv's Python, prints one line of JSON,
/// `{"env": {"<function>": {...}}}`, and serves until its stdin closes.
struct Fakes {
    child: Option<Child>,
    env: BTreeMap<String, Vec<(String, String)>>,
}

/// How long the fakes may take to start.
const FAKES_START: Duration = Duration::from_secs(60);

impl Fakes {
    fn start(session: &Session) -> Result<Fakes> {
        let config = session.config;
        let script = config.root.join(&config.events).join("fakes.py");
        if !script.is_file() {
            return Ok(Fakes {
                child: None,
                env: BTreeMap::new(),
            });
        }
        let python = crate::dev_env::python(&session.sh, config, session.options.installer)?;
        session
            .printer
            .info(&format!("invoke: starting {}", relative(config, &script)));
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
