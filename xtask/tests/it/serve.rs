//! `serve` on small applications built by the tests, through a real HTTP
//! client (curl): usage errors; then, under AWS's runtime interface
//! client, warm environments reused and started for concurrent requests,
//! the throttle of `reserved_concurrency`, timeouts, function errors and
//! malformed answers, payload formats 1.0 and 2.0 with their bodies, path
//! parameters and query strings, the authorizer and its cache, a build run
//! beside serve, and `--watch` reloading a handler while a client keeps
//! asking.
//!
//! Each running `serve` is a [`Serving`]: started with `--port 0`, its URL
//! read from the first line of its stdout, its stderr kept, and always
//! stopped with SIGTERM or SIGINT (SIGTERM in `Drop` too), then checked to
//! leave no runtime process, no layout and no ZIP link behind.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{self, Repo, Run};

/// A function `name` in `lambdas/<name>` (handler `<name>.handler`, no
/// layer: nothing to install), with these lines besides.
fn function(name: &str, lines: &[&str]) -> String {
    let mut text = format!(
        "\n[workspace.metadata.lambda.functions.{name}]\nsource = \"lambdas/{name}\"\nhandler = \"{name}.handler\"\nlayers = []\n"
    );
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// A repository with these tables after the top one, and each function's
/// module (`(name, code)`) in `lambdas/<name>/<name>.py`.
fn app(tables: &[String], modules: &[(&str, &str)]) -> Repo {
    let repo = Repo::new(&metadata(tables));
    for (name, code) in modules {
        repo.write(&format!("lambdas/{name}/{name}.py"), code);
    }
    repo
}

fn metadata(tables: &[String]) -> String {
    format!(
        "\n[workspace.metadata.lambda]\nruntime = \"python3.11\"\n{}",
        tables.concat()
    )
}

/// `serve ARGS` run to its end: for the usage errors, which must end it
/// before anything is served (one that serves is stopped, and fails the test).
fn serve_ends(repo: &Repo, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("serve")
        .args(args)
        .current_dir(repo.path())
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`serve {}` kept running\nstdout:\n{}\nstderr:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    Run(child.wait_with_output().unwrap())
}

#[test]
fn usage_errors_exit_2_before_anything_is_served() {
    let repo = app(
        &[function("hello", &["routes = [\"GET /hello\"]"])],
        &[("hello", "def handler(event, context):\n    return 'hi'\n")],
    );
    for port in ["abc", "65536", "-1", ""] {
        let run = serve_ends(&repo, &["--port", port]);
        run.fails_with(2, &format!("--port: `{port}` is not a port (0 to 65535)"));
        assert_eq!(run.stdout(), "", "nothing is served");
    }
    let run = serve_ends(&repo, &["--port", "0", "nope"]);
    run.fails_with(2, "serve: no function `nope` is configured");
    assert_eq!(run.stdout(), "");
    let run = serve_ends(&repo, &["--port", "0", "hello", "--env", "NOEQUALS"]);
    run.fails_with(2, "--env: `NOEQUALS` is not KEY=VALUE");
    assert_eq!(run.stdout(), "");
    assert!(!repo.path().join("dist").exists(), "nothing was built");
}

#[test]
fn a_dry_run_prints_the_plan_and_starts_nothing() {
    let repo = app(
        &[function("hello", &["routes = [\"GET /hello\"]"])],
        &[("hello", "def handler(event, context):\n    return 'hi'\n")],
    );
    let events = repo.path().join("saved");
    let saved = events.to_str().unwrap();
    let run = serve_ends(
        &repo,
        &["--dry-run", "--fakes", "--port", "0", "--save-events", saved],
    );
    run.success();
    assert!(
        !run.stdout().contains("http://"),
        "nothing is served: {}",
        run.stdout()
    );
    assert!(run.stdout().contains("to run"), "the plan: {}", run.stdout());
    assert!(!repo.path().join("dist").exists(), "nothing was built");
    assert!(!events.exists(), "--save-events made no folder");
}

/// Whether a process runs (a zombie has ended: only its wait is missing).
fn alive(pid: u64) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// An HTTP response as curl received it.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    /// Names in lower case, in the order received.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(held, _)| held == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {self:?}"))
    }

    /// API Gateway's own answer: this status, this JSON body exactly.
    #[track_caller]
    fn is_gateways(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body, format!("{{\"message\":\"{message}\"}}"), "{self:?}");
        assert_eq!(self.header("content-type"), ["application/json"], "{self:?}");
        assert_eq!(self.header("apigw-requestid").len(), 1, "{self:?}");
    }
}

/// `curl` sends `METHOD url+target` with these headers; what it received.
#[track_caller]
fn curl(url: &str, method: &str, target: &str, headers: &[&str]) -> Reply {
    try_curl(url, method, target, headers, &[]).unwrap_or_else(|why| panic!("{why}"))
}

/// [`curl`], or why no HTTP response came.
fn try_curl(url: &str, method: &str, target: &str, headers: &[&str], more: &[&str]) -> Result<Reply, String> {
    let mut command = Command::new("curl");
    command.args([
        "--silent",
        "--show-error",
        "--include",
        "--globoff",
        "--path-as-is",
        "--max-time",
        "120",
        "--request",
        method,
    ]);
    for header in headers {
        command.args(["--header", header]);
    }
    command.args(more);
    let output = command
        .arg(format!("{url}{target}"))
        .output()
        .expect("running curl");
    if !output.status.success() {
        return Err(format!(
            "curl {method} {target}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("no status line: {text:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_string(),
    })
}

/// A running `cargo xtask serve --port 0 --builder host --runner host`.
struct Serving {
    child: Option<Child>,
    url: String,
    repo_path: PathBuf,
    /// serve's stderr so far, line by line.
    log: Arc<Mutex<String>>,
}

impl Serving {
    /// Starts serve on `repo` with `args` besides, and waits for its URL.
    fn start(repo: &Repo, args: &[&str]) -> Serving {
        support::require_runtime();
        let site = repo.path().join("runtime-site");
        fs::create_dir_all(&site).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["serve", "--port", "0", "--builder", "host", "--runner", "host"])
            .args(args)
            .current_dir(repo.path())
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("UV_CACHE_DIR")
            .env_remove("PIP_CACHE_DIR")
            // boto3 is no need of these functions: an empty runtime site.
            .env("XTASK_RUNTIME_SITE", &site)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let kept = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = kept.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (first, said) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(line) = lines.next() {
                let _ = first.send(line);
            }
            // Whatever else: read, so that serve never blocks on the pipe.
            lines.for_each(drop);
        });
        let mut serving = Serving {
            child: Some(child),
            url: String::new(),
            repo_path: repo.path().to_path_buf(),
            log,
        };
        match said.recv_timeout(Duration::from_secs(600)) {
            Ok(line) => {
                assert!(
                    line.starts_with("http://127.0.0.1:") && !line.ends_with(":0"),
                    "the first line of stdout is not the URL: {line:?}\n{}",
                    serving.log()
                );
                serving.url = line;
            }
            Err(_) => {
                thread::sleep(Duration::from_millis(200));
                let log = serving.log();
                assert!(
                    !log.contains("cannot run here"),
                    "this test runs functions, and this host cannot: {log}"
                );
                panic!("serve gave no URL:\n{log}");
            }
        }
        serving
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn get(&self, target: &str) -> Reply {
        curl(&self.url, "GET", target, &[])
    }

    fn get_with(&self, target: &str, headers: &[&str]) -> Reply {
        curl(&self.url, "GET", target, headers)
    }

    /// Waits until serve's stderr holds `needle` `times` times; its stderr.
    #[track_caller]
    fn wait_for_log(&self, needle: &str, times: usize) -> String {
        self.wait_until(&format!("{needle:?} {times} time(s)"), |log| {
            log.matches(needle).count() >= times
        })
    }

    /// Waits until serve's stderr is `ready` (`what` says what for); its stderr.
    #[track_caller]
    fn wait_until(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let log = self.log();
            if ready(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "serve never said {what}:\n{log}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then serve's end: the runtime processes `pids` are gone
    /// and no layout folder is left. Returns serve's stderr.
    #[track_caller]
    fn stop(self, pids: &[u64]) -> String {
        self.stop_with("TERM", pids)
    }

    /// [`Serving::stop`] with SIGINT, as Ctrl-C at a terminal sends it.
    #[track_caller]
    fn interrupt(self, pids: &[u64]) -> String {
        self.stop_with("INT", pids)
    }

    #[track_caller]
    fn stop_with(mut self, signal: &str, pids: &[u64]) -> String {
        let child = self.child.take().unwrap();
        end(child, signal).unwrap_or_else(|why| panic!("{why}\n{}", self.log()));
        let log = self.log();
        let left: Vec<u64> = pids.iter().copied().filter(|&pid| alive(pid)).collect();
        assert!(
            left.is_empty(),
            "runtimes still running after serve ended: {left:?}\n{log}"
        );
        let sandboxes = self.repo_path.join("target/lambda/sandbox");
        let layouts: Vec<PathBuf> = fs::read_dir(&sandboxes)
            .map(|items| items.flatten().map(|item| item.path()).collect())
            .unwrap_or_default();
        assert!(layouts.is_empty(), "layout folders left: {layouts:?}\n{log}");
        let pools = self.repo_path.join("target/lambda/serve");
        let links: Vec<PathBuf> = fs::read_dir(&pools)
            .map(|items| items.flatten().map(|item| item.path()).collect())
            .unwrap_or_default();
        assert!(links.is_empty(), "the pools' ZIP links left: {links:?}\n{log}");
        log
    }
}

/// `SIG<signal>` to serve and its end within a bound (SIGKILL past it).
fn end(mut child: Child, signal: &str) -> Result<(), String> {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args([&format!("-{signal}"), &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("serve did not end within 60 s of SIG{signal}"))
}

impl Drop for Serving {
    /// A test that failed half-way still ends its serve (and so its runtimes).
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = end(child, "TERM");
        }
    }
}

/// The pid a handler put in its answer (`{"pid": N, ...}`).
#[track_caller]
fn pid(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid: {reply:?}"))
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    /// Counts its invocations in a module variable: what one environment
    /// keeps between two requests.
    const COUNTER: &str = "import os\n\nCOUNT = 0\n\n\ndef handler(event, context):\n    global COUNT\n    COUNT += 1\n    return {\"pid\": os.getpid(), \"count\": COUNT}\n";

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn one_environment_answers_one_request_after_another() {
        let repo = app(
            &[function("counter", &["routes = [\"GET /count\"]"])],
            &[("counter", COUNTER)],
        );
        let serving = Serving::start(&repo, &[]);
        let first = serving.get("/count");
        let second = serving.get("/count");
        assert_eq!(first.json()["count"], 1, "{first:?}");
        assert_eq!(second.json()["count"], 2, "the same module answered: {second:?}");
        assert_eq!(pid(&first), pid(&second), "the same process answered");
        let log = serving.interrupt(&[pid(&first)]);
        assert_eq!(
            log.matches("[counter] environment 1 ready: Init Duration: ")
                .count(),
            1,
            "{log}"
        );
        assert!(!log.contains("environment 2"), "{log}");
        assert_eq!(log.matches("GET /count -> 200 GET /count ").count(), 2, "{log}");
    }

    /// Says it holds its environment, and holds it until the file `release`
    /// exists (at most 20 s, below the API's 30 s).
    fn holder(release: &Path) -> String {
        format!(
            "import os\nimport time\n\n\ndef handler(event, context):\n    print(\"holding\", os.getpid(), flush=True)\n    for _ in range(400):\n        if os.path.exists({:?}):\n            break\n        time.sleep(0.05)\n    return {{\"pid\": os.getpid()}}\n",
            release.display().to_string()
        )
    }

    /// The pids `function`'s holders said, each on a log line of its own
    /// (`[function request-id] holding PID`).
    fn holding(log: &str, function: &str) -> BTreeSet<u64> {
        log.lines()
            .filter(|line| line.starts_with(&format!("[{function} ")))
            .filter_map(|line| line.split_once("] holding ")?.1.parse().ok())
            .collect()
    }

    /// Three requests at once, each held by its function until all three
    /// are in: three environments. Under `reserved_concurrency = 1`, while
    /// the one environment is busy, Lambda's throttle.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn concurrent_requests_get_environments_of_their_own_up_to_the_reserved_concurrency() {
        let dir = tempfile::Builder::new()
            .prefix("xtask-release-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let (wide, single) = (dir.path().join("wide"), dir.path().join("single"));
        let repo = app(
            &[
                function("wide", &["routes = [\"GET /wide\"]", "timeout = \"30 s\""]),
                function(
                    "single",
                    &[
                        "routes = [\"GET /single\"]",
                        "timeout = \"30 s\"",
                        "reserved_concurrency = 1",
                    ],
                ),
            ],
            &[("wide", &holder(&wide)), ("single", &holder(&single))],
        );
        let serving = Arc::new(Serving::start(&repo, &[]));
        let asking: Vec<_> = (0..3)
            .map(|_| {
                let serving = Arc::clone(&serving);
                thread::spawn(move || serving.get("/wide"))
            })
            .collect();
        serving.wait_until("three holders of `wide`", |log| holding(log, "wide").len() == 3);
        fs::write(&wide, "").unwrap();
        let replies: Vec<Reply> = asking.into_iter().map(|thread| thread.join().unwrap()).collect();
        let pids: BTreeSet<u64> = replies.iter().map(pid).collect();
        assert_eq!(pids.len(), 3, "three environments answered: {replies:?}");
        let log = serving.log();
        assert_eq!(holding(&log, "wide"), pids, "each print is one log line: {log}");
        for n in 1..=3 {
            assert!(log.contains(&format!("[wide] environment {n} ready")), "{log}");
        }

        let held = {
            let serving = Arc::clone(&serving);
            thread::spawn(move || serving.get("/single"))
        };
        serving.wait_until("the holder of `single`", |log| holding(log, "single").len() == 1);
        for _ in 0..2 {
            serving.get("/single").is_gateways(429, "Too Many Requests");
        }
        fs::write(&single, "").unwrap();
        let first = held.join().unwrap();
        let again = serving.get("/single");
        assert_eq!(pid(&first), pid(&again), "the throttle ended no environment");

        let mut all: Vec<u64> = pids.into_iter().collect();
        all.push(pid(&first));
        let serving = Arc::into_inner(serving).expect("every request has ended");
        let log = serving.stop(&all);
        assert!(!log.contains("[single] environment 2"), "{log}");
        assert_eq!(log.matches("GET /single -> 429 GET /single ").count(), 2, "{log}");
    }

    /// Reads its own code from its task root at every request.
    const READER: &str = "import os\n\n\ndef handler(event, context):\n    with open(os.path.join(os.environ[\"LAMBDA_TASK_ROOT\"], \"reader.py\")) as code:\n        return {\"pid\": os.getpid(), \"size\": len(code.read())}\n";

    /// A build run beside serve (another terminal) sweeps the leftovers of
    /// interrupted runs: not the layouts of serve's live environments.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_build_beside_serve_leaves_its_environments_their_code() {
        let repo = app(
            &[function("reader", &["routes = [\"GET /read\"]"])],
            &[("reader", READER)],
        );
        let serving = Serving::start(&repo, &[]);
        let warm = pid(&serving.get("/read"));
        let site = repo.path().join("runtime-site");
        repo.xtask_with(
            &["build", "--builder", "host"],
            &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())],
        )
        .success();
        let after = serving.get("/read");
        assert_eq!(after.status, 200, "{after:?}\n{}", serving.log());
        assert_eq!(pid(&after), warm, "the same environment answered");
        assert_eq!(after.json()["size"], READER.len(), "{after:?}");
        serving.stop(&[warm]);
    }

    /// Sleeps the seconds of its `sleep` query parameter.
    const NAP: &str = "import os\nimport time\n\n\ndef handler(event, context):\n    seconds = float((event.get(\"queryStringParameters\") or {}).get(\"sleep\", \"0\"))\n    time.sleep(seconds)\n    return {\"pid\": os.getpid()}\n";

    /// The function's timeout (below the API's 30 s) is the integration's:
    /// 503, and the environment that timed out is not used again.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_timed_out_function_is_503_and_its_environment_is_replaced() {
        let repo = app(
            &[function("nap", &["routes = [\"GET /nap\"]", "timeout = \"1 s\""])],
            &[("nap", NAP)],
        );
        let serving = Serving::start(&repo, &[]);
        let before = pid(&serving.get("/nap"));
        serving
            .get("/nap?sleep=3")
            .is_gateways(503, "Service Unavailable");
        let after = pid(&serving.get("/nap"));
        assert_ne!(before, after, "a fresh environment answers after the timeout");
        assert!(!alive(before), "the environment that timed out was ended");
        let log = serving.stop(&[before, after]);
        assert!(log.contains("[nap] environment 2 ready"), "{log}");
        assert!(log.contains("GET /nap?sleep=3 -> 503 GET /nap "), "{log}");
    }

    /// Answers by its route: an exception, an object without `statusCode`,
    /// a `statusCode` that is no status, or its event.
    const SHAPES: &str = r#"import json


def handler(event, context):
    route = event.get("routeKey") or event["httpMethod"] + " " + event["resource"]
    if route == "GET /raise":
        raise ValueError("the handler failed")
    if route == "GET /bare":
        return {"hello": "world", "n": [1, 2]}
    if route == "GET /nonsense":
        return {"statusCode": "teapot"}
    if route == "GET /encoded":
        return {"statusCode": 200, "isBase64Encoded": True, "body": "AAH+/2hp"}
    if route == "GET /cookies":
        return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2; HttpOnly"], "headers": {"x-made-by": "shapes"}, "body": "baked"}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"#;

    fn shapes(payload_format: &str) -> Repo {
        app(
            &[
                format!("\n[workspace.metadata.lambda.api]\npayload_format = \"{payload_format}\"\n"),
                function(
                    "shapes",
                    &[
                        r#"routes = ["GET /raise", "GET /bare", "GET /nonsense", "GET /cookies", "GET /encoded", "GET /items/{id}", "POST /items/{id}"]"#,
                    ],
                ),
            ],
            &[("shapes", SHAPES)],
        )
    }

    /// Payload 1.0: a function error, and an answer without `statusCode`
    /// (which 2.0 would take as a body), are API Gateway's 502.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn payload_1_0_function_errors_and_malformed_answers_are_502() {
        let repo = shapes("1.0");
        let serving = Serving::start(&repo, &[]);
        serving.get("/raise").is_gateways(502, "Internal Server Error");
        serving.get("/bare").is_gateways(502, "Internal Server Error");
        serving.get("/nonsense").is_gateways(502, "Internal Server Error");
        // The environment survives its function's error: the next answers.
        let event = serving.get("/items/a%20b?x=1&x=2").json();
        assert_eq!(event["version"], "1.0", "{event}");
        assert_eq!(event["resource"], "/items/{id}", "{event}");
        assert_eq!(event["path"], "/items/a%20b", "{event}");
        assert_eq!(event["pathParameters"], json!({"id": "a b"}), "{event}");
        assert_eq!(event["queryStringParameters"], json!({"x": "2"}), "{event}");
        assert_eq!(
            event["multiValueQueryStringParameters"],
            json!({"x": ["1", "2"]}),
            "{event}"
        );
        let log = serving.stop(&[]);
        assert!(log.contains("ValueError: the handler failed"), "{log}");
        assert!(log.contains("GET /bare -> 502 GET /bare "), "{log}");
        assert_eq!(log.matches("environment 1 ready").count(), 1, "{log}");
        assert!(!log.contains("environment 2"), "{log}");
    }

    /// Payload 2.0 end to end: a bare object is a 200 JSON body, cookies
    /// are Set-Cookie headers, and the event carries the route key, the raw
    /// path, the path parameters and the cookies.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn payload_2_0_answers_and_events_end_to_end() {
        let repo = shapes("2.0");
        let serving = Serving::start(&repo, &[]);
        let bare = serving.get("/bare");
        assert_eq!(bare.status, 200, "{bare:?}");
        assert_eq!(bare.header("content-type"), ["application/json"], "{bare:?}");
        assert_eq!(bare.json(), json!({"hello": "world", "n": [1, 2]}));
        let cookies = serving.get("/cookies");
        assert_eq!(cookies.status, 201, "{cookies:?}");
        assert_eq!(
            cookies.header("set-cookie"),
            ["a=1; Path=/", "b=2; HttpOnly"],
            "{cookies:?}"
        );
        assert_eq!(cookies.header("x-made-by"), ["shapes"], "{cookies:?}");
        assert_eq!(cookies.body, "baked");
        serving.get("/raise").is_gateways(502, "Internal Server Error");
        serving.get("/nonsense").is_gateways(502, "Internal Server Error");
        serving.get("/nowhere").is_gateways(404, "Not Found");

        let reply = serving.get_with(
            "/items/a%20b?x=1&x=2&q=caf%C3%A9+au+lait",
            &["Cookie: session=abc; theme=dark", "X-Custom: one"],
        );
        let event = reply.json();
        assert_eq!(event["version"], "2.0", "{event}");
        assert_eq!(event["routeKey"], "GET /items/{id}", "{event}");
        assert_eq!(event["rawPath"], "/items/a%20b", "{event}");
        assert_eq!(event["rawQueryString"], "x=1&x=2&q=caf%C3%A9+au+lait", "{event}");
        assert_eq!(event["pathParameters"], json!({"id": "a b"}), "{event}");
        assert_eq!(
            event["queryStringParameters"],
            json!({"x": "1,2", "q": "café au lait"}),
            "{event}"
        );
        assert_eq!(event["cookies"], json!(["session=abc", "theme=dark"]), "{event}");
        assert!(event["headers"].get("cookie").is_none(), "{event}");
        assert_eq!(event["headers"]["x-custom"], "one", "{event}");
        assert_eq!(event["requestContext"]["routeKey"], "GET /items/{id}", "{event}");
        assert_eq!(event["requestContext"]["http"]["method"], "GET", "{event}");
        assert_eq!(
            event["requestContext"]["requestId"].as_str(),
            reply.header("apigw-requestid").first().copied(),
            "{event}"
        );
        let port = serving.url.rsplit(':').next().unwrap().to_string();
        assert_eq!(event["headers"]["x-forwarded-port"], port, "{event}");

        // Bodies: bytes a client sends arrive base64-encoded, a function's
        // base64 answer reaches the client as bytes, one byte over API
        // Gateway's payload limit is its 413.
        let sent = repo.path().join("sent.bin");
        fs::write(&sent, [0u8, 1, 0xfe, 0xff, b'h', b'i']).unwrap();
        let data = format!("@{}", sent.display());
        let posted = try_curl(
            &serving.url,
            "POST",
            "/items/bytes",
            &["Content-Type: application/octet-stream"],
            &["--data-binary", &data],
        )
        .unwrap();
        let event = posted.json();
        assert_eq!(event["isBase64Encoded"], true, "{event}");
        assert_eq!(event["body"], "AAH+/2hp", "{event}");
        let encoded = Command::new("curl")
            .args(["--silent", "--show-error", &format!("{}/encoded", serving.url)])
            .output()
            .unwrap();
        assert_eq!(encoded.stdout, [0u8, 1, 0xfe, 0xff, b'h', b'i']);
        let big = repo.path().join("big.bin");
        let file = fs::File::create(&big).unwrap();
        file.set_len(10 * 1024 * 1024 + 1).unwrap();
        let data = format!("@{}", big.display());
        try_curl(
            &serving.url,
            "POST",
            "/items/big",
            &["Content-Type: application/octet-stream"],
            &["--data-binary", &data],
        )
        .unwrap()
        .is_gateways(413, "Request Entity Too Large");
        let log = serving.stop(&[]);
        assert!(log.contains("POST /items/big -> 413"), "{log}");
    }

    /// Allows `Bearer good` (with a context), denies any other token, and
    /// says each call in its log.
    const AUTH: &str = r#"import json


def handler(event, context):
    token = (event.get("headers") or {}).get("authorization", "")
    print("authorizer asked about", json.dumps(token), flush=True)
    effect = "Allow" if token == "Bearer good" else "Deny"
    return {
        "principalId": "alice",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": event.get("methodArn") or event["routeArn"]}],
        },
        "context": {"user": "alice", "level": 7, "admin": False},
    }
"#;

    /// What the authorizer told the integration.
    const GUARDED: &str = "import json\n\n\ndef handler(event, context):\n    return {\"statusCode\": 200, \"body\": json.dumps(event[\"requestContext\"][\"authorizer\"])}\n";

    const PUBLIC: &str =
        "def handler(event, context):\n    return {\"statusCode\": 200, \"body\": \"open\"}\n";

    /// An API with `auth` deciding for `guarded` (`GET /secret`), `public`
    /// (`GET /open`) outside it, and these lines in `[api]` and
    /// `[api.authorizer]`.
    /// What a raw client gets back for `head` (sent as is), the first line.
    fn raw_status(url: &str, head: &[u8]) -> String {
        use std::io::{Read, Write};
        let address = url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connecting to serve");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(head);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_hostile_client_is_bounded_and_the_others_are_still_answered() {
        let repo = shapes("2.0");
        let serving = Serving::start(&repo, &[]);
        // A client that sends half a head and waits holds one connection,
        // not the server.
        let mut trickle = std::net::TcpStream::connect(serving.url.trim_start_matches("http://")).unwrap();
        std::io::Write::write_all(&mut trickle, b"GET /bare HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        assert_eq!(serving.get("/bare").status, 200);
        // A head without end, and one with more headers than any browser
        // sends, are refused, not buffered.
        let mut long = b"GET /bare HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1 << 20));
        long.extend(b"\r\n\r\n");
        assert_eq!(
            raw_status(&serving.url, &long),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let mut many = b"GET /bare HTTP/1.1\r\nHost: x\r\n".to_vec();
        for n in 0..500 {
            many.extend(format!("X-{n}: a\r\n").bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(
            raw_status(&serving.url, &many),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        // Not HTTP at all: an answer, not a crash.
        assert_eq!(
            raw_status(&serving.url, b"\x16\x03\x01 hello\r\n\r\n"),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(serving.get("/bare").status, 200);
        drop(trickle);
        serving.stop(&[]);
    }

    fn guarded(api: &[&str], authorizer: &[&str]) -> Repo {
        let mut authorizer_table =
            String::from("\n[workspace.metadata.lambda.api.authorizer]\nfunction = \"auth\"\n");
        for line in authorizer {
            authorizer_table.push_str(line);
            authorizer_table.push('\n');
        }
        app(
            &[
                format!("\n[workspace.metadata.lambda.api]\n{}\n", api.join("\n")),
                authorizer_table,
                function("auth", &[]),
                function("guarded", &["routes = [\"GET /secret\"]", "authorize = true"]),
                function("public", &["routes = [\"GET /open\"]"]),
            ],
            &[("auth", AUTH), ("guarded", GUARDED), ("public", PUBLIC)],
        )
    }

    /// The events `--save-events` wrote for `function`.
    fn saved(dir: &Path, function: &str) -> Vec<Value> {
        let mut events = Vec::new();
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(&format!(".{function}.json")) {
                events.push(serde_json::from_slice(&fs::read(entry.path()).unwrap()).unwrap());
            }
        }
        events
    }

    /// Without identity sources the authorizer is asked on every request
    /// of an authorized route (payload 1.0, an IAM policy): a denial is
    /// 403, an allowed request reaches the function with the context.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn the_authorizer_decides_every_request_without_identity_sources() {
        let repo = guarded(
            &["payload_format = \"1.0\""],
            &["payload_format = \"1.0\"", "identity_sources = []"],
        );
        let events = repo.path().join("events");
        let serving = Serving::start(&repo, &["--save-events", events.to_str().unwrap()]);
        serving.get("/secret").is_gateways(403, "Forbidden");
        serving
            .get_with("/secret", &["Authorization: Bearer bad"])
            .is_gateways(403, "Forbidden");
        let allowed = serving.get_with("/secret", &["Authorization: Bearer good"]);
        assert_eq!(allowed.status, 200, "{allowed:?}");
        let context = allowed.json();
        assert_eq!(context["user"], "alice", "{context}");
        assert_eq!(context["level"], 7, "{context}");
        assert_eq!(context["admin"], false, "{context}");
        assert_eq!(context["principalId"], "alice", "{context}");
        assert!(context["integrationLatency"].is_u64(), "{context}");
        let open = serving.get("/open");
        assert_eq!((open.status, open.body.as_str()), (200, "open"), "{open:?}");
        let log = serving.stop(&[]);
        assert_eq!(log.matches("authorizer asked about").count(), 3, "{log}");
        let asked = saved(&events, "auth");
        assert_eq!(asked.len(), 3, "{asked:?}");
        for event in &asked {
            assert_eq!(event["type"], "REQUEST", "{event}");
            assert!(
                event["methodArn"]
                    .as_str()
                    .is_some_and(|arn| arn.ends_with("/$default/GET/secret")),
                "{event}"
            );
        }
        assert_eq!(saved(&events, "guarded").len(), 1);
        assert_eq!(saved(&events, "public").len(), 1);
    }

    /// With the Authorization header as identity source and a TTL: no
    /// header is 401 without asking; one answer per token is cached
    /// (payload 2.0, an IAM policy; the context under `lambda`).
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn the_authorizer_answer_is_cached_by_identity_source() {
        let repo = guarded(
            &[],
            &[
                "payload_format = \"2.0\"",
                "response = \"iam\"",
                "identity_sources = [\"$request.header.Authorization\"]",
                "result_ttl = 300",
            ],
        );
        let events = repo.path().join("events");
        let serving = Serving::start(&repo, &["--save-events", events.to_str().unwrap()]);
        serving.get("/secret").is_gateways(401, "Unauthorized");
        assert_eq!(saved(&events, "auth").len(), 0, "a missing source asks no one");
        for _ in 0..2 {
            let allowed = serving.get_with("/secret", &["Authorization: Bearer good"]);
            assert_eq!(allowed.status, 200, "{allowed:?}");
            assert_eq!(
                allowed.json()["lambda"],
                json!({"user": "alice", "level": 7, "admin": false}),
                "{allowed:?}"
            );
        }
        assert_eq!(
            saved(&events, "auth").len(),
            1,
            "the second answer came from the cache"
        );
        for _ in 0..2 {
            serving
                .get_with("/secret", &["Authorization: Bearer bad"])
                .is_gateways(403, "Forbidden");
        }
        let asked = saved(&events, "auth");
        assert_eq!(asked.len(), 2, "one call per token: {asked:?}");
        for event in &asked {
            assert_eq!(event["type"], "REQUEST", "{event}");
            assert_eq!(event["routeKey"], "GET /secret", "{event}");
        }
        let mut sources: Vec<&Value> = asked.iter().map(|event| &event["identitySource"]).collect();
        sources.sort_by_key(|source| source.to_string());
        assert_eq!(sources, [&json!(["Bearer bad"]), &json!(["Bearer good"])]);
        let log = serving.stop(&[]);
        assert_eq!(log.matches("authorizer asked about").count(), 2, "{log}");
        assert_eq!(saved(&events, "guarded").len(), 2);
    }

    /// `ver`'s module at `version`: it answers `<version> <pid>`.
    fn ver(version: &str) -> String {
        format!(
            "import os\n\nVERSION = {version:?}\n\n\ndef handler(event, context):\n    return {{\"statusCode\": 200, \"body\": VERSION + \" \" + str(os.getpid())}}\n"
        )
    }

    const STEADY: &str = "import os\n\n\ndef handler(event, context):\n    return {\"pid\": os.getpid()}\n";

    fn watched(ver_routes: &str) -> Vec<String> {
        vec![
            function("ver", &[&format!("routes = {ver_routes}")]),
            function("steady", &["routes = [\"GET /steady\"]"]),
        ]
    }

    /// One answer the looping client got (`status` 0: no HTTP answer).
    struct Seen {
        at: Instant,
        status: u16,
        body: String,
    }

    /// Sends `GET /version` one request after another until told to stop
    /// (at most 20,000 requests or 5 minutes), keeping every answer.
    struct Client {
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        thread: thread::JoinHandle<()>,
    }

    impl Client {
        fn start(url: &str) -> Client {
            let (seen, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
            let (kept, stopped, url) = (Arc::clone(&seen), Arc::clone(&stop), url.to_string());
            let thread = thread::spawn(move || {
                let started = Instant::now();
                for _ in 0..20_000 {
                    if stopped.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(300) {
                        return;
                    }
                    let (status, body) = match try_curl(&url, "GET", "/version", &[], &[]) {
                        Ok(reply) => (reply.status, reply.body),
                        Err(why) => (0, why),
                    };
                    kept.lock().unwrap().push(Seen {
                        at: Instant::now(),
                        status,
                        body,
                    });
                }
            });
            Client { seen, stop, thread }
        }

        /// The first answer from `from` on whose body starts with
        /// `prefix`: its index and when it came.
        #[track_caller]
        fn wait_for(&self, from: usize, prefix: &str) -> (usize, Instant) {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                {
                    let seen = self.seen.lock().unwrap();
                    let found = seen
                        .iter()
                        .enumerate()
                        .skip(from)
                        .find(|(_, seen)| seen.status == 200 && seen.body.starts_with(prefix));
                    if let Some((at, seen)) = found {
                        return (at, seen.at);
                    }
                }
                assert!(Instant::now() < deadline, "no answer {prefix:?} within 120 s");
                thread::sleep(Duration::from_millis(5));
            }
        }

        fn count(&self) -> usize {
            self.seen.lock().unwrap().len()
        }

        fn finish(self) -> Vec<Seen> {
            self.stop.store(true, Ordering::Relaxed);
            self.thread.join().expect("the client");
            Arc::into_inner(self.seen).unwrap().into_inner().unwrap()
        }
    }

    /// The pid of a `<version> <pid>` answer.
    fn ver_pid(body: &str) -> u64 {
        body.split_whitespace()
            .nth(1)
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {body:?}"))
    }

    /// Waits until `pid` has ended (a replaced environment ends once the
    /// requests it was answering are done).
    #[track_caller]
    fn ends(pid: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "the replaced environment {pid} still runs"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// A client asks `GET /version` in a loop while its handler is saved
    /// anew, then with a syntax error, then fixed, and a route is added to
    /// Cargo.toml: no request fails, every answer is the last good build's,
    /// none goes back to an older one, and `steady`, which no save touched,
    /// keeps its environment. The time from a save to the first new answer
    /// is printed, not asserted.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn watch_reloads_a_saved_handler_without_a_failed_request() {
        let repo = app(
            &watched("[\"GET /version\"]"),
            &[("ver", &ver("v1")), ("steady", STEADY)],
        );
        let serving = Serving::start(&repo, &["--watch"]);
        serving.wait_for_log("serve: watching for saves", 1);
        let steady = pid(&serving.get("/steady"));
        let client = Client::start(&serving.url);
        client.wait_for(0, "v1 ");

        let saved = Instant::now();
        repo.write("lambdas/ver/ver.py", &ver("v2"));
        let (v2_at, v2_time) = client.wait_for(0, "v2 ");
        println!(
            "serve --watch: save to the first new answer: {:?}",
            v2_time - saved
        );

        let broken_from = client.count();
        repo.write(
            "lambdas/ver/ver.py",
            "import os\n\ndef handler(event, context:\n    return 'broken'\n",
        );
        let log = serving.wait_for_log("still serving the last good build", 1);
        assert!(log.contains("syntax error"), "the error is shown: {log}");
        let failed_at = client.count();
        while client.count() < failed_at + 5 {
            thread::sleep(Duration::from_millis(5));
        }

        let saved = Instant::now();
        let fixed_from = client.count();
        repo.write("lambdas/ver/ver.py", &ver("v3"));
        let (v3_at, v3_time) = client.wait_for(fixed_from, "v3 ");
        println!(
            "serve --watch: save of the fix to the first new answer: {:?}",
            v3_time - saved
        );

        serving.get("/added").is_gateways(404, "Not Found");
        let routes_from = serving.log().len();
        let saved = Instant::now();
        repo.set_metadata(&metadata(&watched("[\"GET /version\", \"GET /added\"]")));
        let deadline = Instant::now() + Duration::from_secs(120);
        let added = loop {
            let reply = serving.get("/added");
            if reply.status != 404 {
                break reply;
            }
            assert!(Instant::now() < deadline, "the new route never answered");
            thread::sleep(Duration::from_millis(10));
        };
        println!(
            "serve --watch: save of Cargo.toml to the new route's answer: {:?}",
            saved.elapsed()
        );
        assert_eq!(added.status, 200, "{added:?}");
        assert!(added.body.starts_with("v3 "), "{added:?}");
        client.wait_for(client.count(), "v3 ");

        let seen = client.finish();
        let failed: Vec<(u16, &str)> = seen
            .iter()
            .filter(|seen| seen.status != 200)
            .map(|seen| (seen.status, seen.body.as_str()))
            .collect();
        assert!(
            failed.is_empty(),
            "requests failed during the reloads: {failed:?}"
        );
        let version = |body: &str| match body.split(' ').next() {
            Some("v1") => 1,
            Some("v2") => 2,
            Some("v3") => 3,
            _ => panic!("an answer of no version: {body:?}"),
        };
        let versions: Vec<u32> = seen.iter().map(|seen| version(&seen.body)).collect();
        let back = versions.windows(2).position(|pair| pair[1] < pair[0]);
        assert_eq!(
            back, None,
            "an older build answered after a newer one: {versions:?}"
        );
        assert!(
            versions[broken_from..fixed_from].iter().all(|&v| v == 2),
            "while the handler was broken, the last good build answered: {versions:?}"
        );
        assert!(fixed_from - failed_at >= 5);
        let (v1, v2, v3) = (
            ver_pid(&seen[0].body),
            ver_pid(&seen[v2_at].body),
            ver_pid(&seen[v3_at].body),
        );
        assert!(v1 != v2 && v2 != v3, "each good save started a new environment");
        // Every environment of a replaced build ends (the client asked one
        // request at a time: one environment per build).
        let pids_of = |wanted: u32| -> BTreeSet<u64> {
            seen.iter()
                .filter(|seen| version(&seen.body) == wanted)
                .map(|seen| ver_pid(&seen.body))
                .collect()
        };
        assert_eq!(pids_of(1), BTreeSet::from([v1]));
        assert_eq!(pids_of(2), BTreeSet::from([v2]));
        ends(v1);
        ends(v2);
        // A change of routes alone serves a new build with the same pool:
        // v3's environment still runs (the test's own requests to /added,
        // beside the client's, may have started a second one).
        let log = serving.log();
        let after_routes = &log[routes_from..];
        assert!(!after_routes.contains("serve: reloaded"), "{log}");
        assert!(after_routes.contains("serve: build 4 is serving"), "{log}");
        assert!(alive(v3), "{log}");
        assert_eq!(pid(&serving.get("/steady")), steady, "steady was not reloaded");
        let mut pids: Vec<u64> = seen.iter().map(|seen| ver_pid(&seen.body)).collect();
        pids.extend([steady, ver_pid(&added.body)]);
        let log = serving.stop(&pids);
        assert!(!log.contains("[steady] environment 2"), "{log}");
        let reloads: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("serve: reloaded"))
            .collect();
        assert!(!reloads.is_empty(), "{log}");
        assert!(!reloads.iter().any(|line| line.contains("steady")), "{log}");
        println!("serve --watch: {} requests, none failed", seen.len());
    }
}
