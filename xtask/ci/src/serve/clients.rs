//! The real clients of the session and of the browser stage, and what
//! they carry: a request sent with the `curl` binary or with Python's
//! `urllib.request`, and the people's tokens signed by the sample world's
//! own helpers (lambdas/events/world.py), as generate.py signs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use xshell::Shell;

use xtask::config::Config;

use super::process::command;
use super::responses::Received;

/// The people's tokens, signed now by world.py's helpers (one JSON object
/// on stdout): Alice's (an admin), Bob's (a member), an expired one, one
/// for another app client, an ID token; with the ids and the allowed
/// origin of the world.
const TOKENS: &str = r#"
import json, sys, time
sys.path.insert(0, sys.argv[1])
import world
now = int(time.time())
hour = 3600
alice = world.access_claims(now, now + hour)
print(json.dumps({
    "alice": world.sign(alice),
    "bob": world.sign(world.access_claims(now, now + hour, world.BOB)),
    "expired": world.sign(world.access_claims(now - 2 * hour, now - hour)),
    "other_client": world.sign({**alice, "client_id": "another-app-client"}),
    "id_token": world.sign(world.id_claims(now, now + hour)),
    "bob_id": world.BOB,
    "dave_id": world.DAVE,
    "allowed_origin": world.ALLOWED_ORIGIN,
}))
"#;

/// Sends each request of the JSON list on stdin with urllib.request; the
/// answers as a JSON list on stdout (4xx and 5xx included).
const URLLIB: &str = r#"
import base64, json, sys, urllib.error, urllib.request
answers = []
for ask in json.load(sys.stdin):
    body = None if ask["body"] is None else open(ask["body"], "rb").read()
    request = urllib.request.Request(ask["url"], data=body, method=ask["method"],
                                     headers=dict(ask["headers"]))
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        answers.append({"status": response.status, "headers": list(response.headers.items()),
                        "body": base64.b64encode(response.read()).decode()})
print(json.dumps(answers))
"#;

/// The tokens and values of [`TOKENS`], by name.
pub(super) struct Tokens(Value);

impl Tokens {
    /// Signed with the development virtualenv's `python`.
    pub(super) fn sign(sh: &Shell, python: &Path, config: &Config) -> Result<Tokens> {
        let output = command(sh, python)
            .args(["-c", TOKENS])
            .arg(config.root.join(&config.events))
            .output()
            .context("signing tokens with world.py")?;
        ensure!(
            output.status.success(),
            "signing tokens with world.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(Tokens(
            serde_json::from_slice(&output.stdout).context("reading the tokens world.py signed")?,
        ))
    }

    pub(super) fn get(&self, name: &str) -> Result<String> {
        self.0[name]
            .as_str()
            .map(String::from)
            .with_context(|| format!("world.py gave no `{name}`"))
    }
}

/// A request as a client sends it.
pub(super) struct Request {
    pub method: &'static str,
    /// After the API's address: the path and query.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    /// A file holding the body.
    pub body: Option<PathBuf>,
}

/// The request sent to `url` with curl; its answer.
pub(super) fn curl(sh: &Shell, url: &str, request: &Request) -> Result<Received> {
    let mut curl = command(sh, "curl");
    curl.args(["--silent", "--show-error", "--include", "--max-time", "60"])
        .args(["--request", request.method]);
    for (name, value) in &request.headers {
        match *name {
            "cookie" => curl.args(["--cookie", value]),
            _ => curl.args(["--header", &format!("{name}: {value}")]),
        };
    }
    if let Some(body) = &request.body {
        curl.arg("--data-binary").arg(format!("@{}", body.display()));
    }
    let output = curl
        .arg(format!("{url}{}", request.path))
        .stdin(Stdio::null())
        .output()
        .context("running curl")?;
    ensure!(
        output.status.success(),
        "curl {} {} failed ({}): {}",
        request.method,
        request.path,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse_response(&output.stdout)
        .with_context(|| format!("reading curl's answer to {} {}", request.method, request.path))
}

/// `curl --include`'s output: the last status line and headers (after any
/// `100 Continue`), then the body.
pub(super) fn parse_response(output: &[u8]) -> Result<Received> {
    let mut rest = output;
    loop {
        let Some(end) = rest.windows(4).position(|window| window == b"\r\n\r\n") else {
            bail!(
                "no end of headers in {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(200)])
            );
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_string();
        rest = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .with_context(|| format!("not a status line: {status_line:?}"))?;
        if (100..200).contains(&status) {
            continue;
        }
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        return Ok(Received {
            status,
            headers,
            body: rest.to_vec(),
        });
    }
}

/// The requests sent to `url` with Python's urllib.request, one after
/// another; their answers in order. The list of requests is written
/// under `work`.
pub(super) fn urllib(
    sh: &Shell,
    python: &Path,
    url: &str,
    requests: &[&Request],
    work: &Path,
) -> Result<Vec<Received>> {
    let asks: Vec<Value> = requests
        .iter()
        .map(|request| {
            json!({
                "method": request.method,
                "url": format!("{url}{}", request.path),
                "headers": request.headers,
                "body": request.body,
            })
        })
        .collect();
    let asked = work.join("urllib.json");
    fs::write(&asked, serde_json::to_vec(&asks)?)?;
    let output = command(sh, python)
        .args(["-c", URLLIB])
        .stdin(fs::File::open(&asked)?)
        .output()
        .context("running urllib.request")?;
    ensure!(
        output.status.success(),
        "urllib.request failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).context("reading urllib's answers")?;
    ensure!(
        answers.len() == requests.len(),
        "urllib.request answered {} of {} requests",
        answers.len(),
        requests.len()
    );
    answers
        .iter()
        .map(|answer| {
            let headers = answer["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
                .collect();
            Ok(Received {
                status: u16::try_from(answer["status"].as_u64().context("no status")?)?,
                headers,
                body: xtask::ground::digest::base64_decode(answer["body"].as_str().unwrap_or_default())
                    .context("the body is not base64")?,
            })
        })
        .collect()
}
