//! "serve: every sample case": every HTTP form of `lambdas/events` sent
//! through `cargo xtask serve --fakes` by `send.py` (each status as
//! `requests.json` expects), then the property of issue 24 on what serve
//! did: each event it sent for a case is the committed sample event but
//! for the connection and the moment, and each response through it is
//! what `cargo xtask invoke` answers to that same event against a fresh
//! fake world, replayed in serve's order.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use xshell::Shell;

use xtask::config::Config;
use xtask::ground::progress::{Printer, Verbosity};
use xtask::lambda::fakes::Fakes;
use xtask::python::installer::InstallerChoice;

use super::events::{event_differences, Connection};
use super::minted::Minted;
use super::process::{command, Serve};
use super::responses::{response_differences, Received};
use super::{fresh_dir, report_mismatches};

/// One case as it went through serve: its answer and the events sent.
struct Sent {
    function: String,
    case: String,
    request_id: String,
    received: Received,
    /// `(n, function, file)`, in the order serve sent them.
    events: Vec<(usize, String, PathBuf)>,
}

pub fn every_case(sh: &Shell, config: &Config, installer: InstallerChoice, xtask: &Path) -> Result<()> {
    let python = xtask::lambda::dev_env::python(sh, config, installer)?;
    let work = fresh_dir(config, "serve-cases")?;
    let saved = work.join("events");
    fs::create_dir_all(&saved)?;
    let events_dir = config.root.join(&config.events);
    let send = events_dir.join("send.py");

    let serve = Serve::start(
        sh,
        xtask,
        &["--save-events".to_string(), saved.display().to_string()],
        &work.join("serve.log"),
    )?;
    let started = Instant::now();
    let output = command(sh, &python)
        .arg(&send)
        .arg(&serve.url)
        .arg("--json")
        .output()
        .context("running send.py")?;
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!(
            "send.py {} --json: not every case got the status requests.json expects ({}); the end of serve's log:\n{}",
            serve.url,
            output.status,
            serve.server.log_tail(20)
        );
    }
    let port = serve.port;
    drop(serve);
    let sent = sent_cases(&output.stdout, &saved)?;
    eprintln!(
        "ci: {} cases through serve in {:.1} s, {} events saved",
        sent.len(),
        started.elapsed().as_secs_f64(),
        sent.iter().map(|case| case.events.len()).sum::<usize>()
    );

    committed_events(&events_dir, &sent, port)?;
    let authorizer = config
        .api
        .authorizer
        .as_ref()
        .map(|authorizer| authorizer.function.as_str());
    same_answers(sh, config, installer, xtask, &sent, authorizer)?;
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// send.py's answers, each with the events serve saved for it (named by
/// the answer's `apigw-requestid`), in the order they were sent: functions
/// by name, each one's cases by name.
fn sent_cases(json: &[u8], saved: &Path) -> Result<Vec<Sent>> {
    let answers: BTreeMap<String, BTreeMap<String, Value>> =
        serde_json::from_slice(json).context("reading send.py --json")?;
    let mut files: BTreeMap<String, Vec<(usize, String, PathBuf)>> = BTreeMap::new();
    for entry in fs::read_dir(saved)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
        let parts: Vec<&str> = name.split('.').collect();
        let [id, n, function, "json"] = parts.as_slice() else {
            bail!("{}: not <requestId>.<n>.<function>.json", path.display());
        };
        let n: usize = n.parse().with_context(|| format!("{name}: n is not a number"))?;
        files
            .entry(id.to_string())
            .or_default()
            .push((n, function.to_string(), path.clone()));
    }
    let mut sent = Vec::new();
    for (function, cases) in answers {
        for (case, answer) in cases {
            let received =
                received(&answer).with_context(|| format!("send.py's answer to {function}/{case}"))?;
            let request_id = received
                .headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("apigw-requestid"))
                .map(|(_, id)| id.clone())
                .with_context(|| format!("{function}/{case}: the response has no apigw-requestid"))?;
            let mut events = files.remove(&request_id).unwrap_or_default();
            events.sort();
            sent.push(Sent {
                function: function.clone(),
                case,
                request_id,
                received,
                events,
            });
        }
    }
    ensure!(
        files.is_empty(),
        "serve saved events for requests no case sent: {:?}",
        files.keys().collect::<Vec<_>>()
    );
    Ok(sent)
}

/// An answer of send.py --json: status, headers, body (base64 when not UTF-8).
fn received(answer: &Value) -> Result<Received> {
    let status = answer["status"].as_u64().context("no status")?;
    let headers = answer["headers"]
        .as_array()
        .context("no headers")?
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(name), Value::String(value)]) => Ok((name.clone(), value.clone())),
            _ => bail!("a header is not [name, value]: {pair}"),
        })
        .collect::<Result<Vec<_>>>()?;
    let text = answer["body"].as_str().context("no body")?;
    let body = match answer["isBase64Encoded"].as_bool() {
        Some(true) => xtask::ground::digest::base64_decode(text).context("the body is not base64")?,
        _ => text.as_bytes().to_vec(),
    };
    Ok(Received {
        status: u16::try_from(status)?,
        headers,
        body,
    })
}

/// (a): for every case, the event serve sent to the case's function (for
/// the authorizer's cases its event, n = 0) is the committed one but for
/// the connection and the moment.
fn committed_events(events_dir: &Path, sent: &[Sent], port: u16) -> Result<()> {
    let mut mismatches = Vec::new();
    for case in sent {
        let name = format!("{}/{}", case.function, case.case);
        let committed_path = events_dir
            .join(&case.function)
            .join(format!("{}.json", case.case));
        let to_function: Vec<&PathBuf> = case
            .events
            .iter()
            .filter(|(_, function, _)| *function == case.function)
            .map(|(_, _, path)| path)
            .collect();
        let [path] = to_function.as_slice() else {
            mismatches.push((
                name,
                vec![format!(
                    "serve sent {} event(s) to `{}` for this request (id {}), not one",
                    to_function.len(),
                    case.function,
                    case.request_id
                )],
            ));
            continue;
        };
        let committed = read_json(&committed_path)?;
        let served = read_json(path)?;
        let connection = Connection {
            request_id: &case.request_id,
            port,
        };
        let differences = event_differences(&committed, &served, &connection);
        if !differences.is_empty() {
            let title = format!(
                "{name}: serve's event ({}) differs from {}",
                path.display(),
                committed_path.display()
            );
            mismatches.push((title, differences));
        }
    }
    report_mismatches(
        "serve's events against the committed ones",
        sent.len(),
        &mismatches,
    )?;
    eprintln!(
        "ci: (a) {} events serve sent equal the committed ones but for the connection and the moment",
        sent.len()
    );
    Ok(())
}

/// (b): every integration event serve sent, replayed in serve's order with
/// `cargo xtask invoke` against a fresh fake world, answers what the
/// client got through serve.
fn same_answers(
    sh: &Shell,
    config: &Config,
    installer: InstallerChoice,
    xtask: &Path,
    sent: &[Sent],
    authorizer: Option<&str>,
) -> Result<()> {
    let fakes = Fakes::start(sh, config, installer, &Printer::new(Verbosity::default()))?;
    let started = Instant::now();
    let mut every_event = String::new();
    for case in sent {
        for (_, _, path) in &case.events {
            every_event.push_str(&fs::read_to_string(path)?);
        }
    }
    let mut minted = Minted::knowing(every_event);
    let mut mismatches = Vec::new();
    let mut count = 0;
    for case in sent {
        for (_, function, path) in &case.events {
            if Some(function.as_str()) == authorizer {
                continue;
            }
            count += 1;
            let answer = invoke(sh, xtask, function, path, fakes.env.get(function))?;
            let differences = response_differences(&case.received, &answer, &mut minted);
            if !differences.is_empty() {
                let title = format!(
                    "{}/{}: the response through serve is not `invoke {function}`'s answer to its event ({})",
                    case.function,
                    case.case,
                    path.display()
                );
                mismatches.push((title, differences));
            }
        }
    }
    drop(fakes);
    let seconds = started.elapsed().as_secs_f64();
    report_mismatches("responses through serve against invoke's", count, &mismatches)?;
    eprintln!(
        "ci: (b) {count} responses through serve equal invoke's answers to the same events (a fresh fake world, serve's order; {count} invokes in {seconds:.1} s)"
    );
    Ok(())
}

/// `cargo xtask invoke FUNCTION --event FILE --env K=V...`: the function's answer.
fn invoke(
    sh: &Shell,
    xtask: &Path,
    function: &str,
    event: &Path,
    env: Option<&Vec<(String, String)>>,
) -> Result<Value> {
    let mut invoke = command(sh, xtask);
    invoke.args(["invoke", function, "--event"]).arg(event).args([
        "--builder",
        "host",
        "--runner",
        "host",
        "--quiet",
    ]);
    for (name, value) in env.into_iter().flatten() {
        invoke.arg("--env").arg(format!("{name}={value}"));
    }
    let output = invoke
        .output()
        .with_context(|| format!("running invoke {function}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "invoke {function} --event {} failed ({}):\n{stderr}",
        event.display(),
        output.status
    );
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "invoke {function}: its answer is not JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}
