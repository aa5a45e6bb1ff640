//! `invoke` against small applications built by the tests, under AWS's
//! runtime interface client: responses, Lambda's error types and exit 1
//! for every way a function fails (a 0600 file in a layer, a missing
//! layer, a wrong handler, a syntax error, an exception, a timeout), the
//! sandbox (non-root, read-only code), bad events, and `--all`.

use std::fs;
use std::process::Command;

use crate::support::{self, App, Repo, Run};

/// The standard application's layers, an external layer `vendor`, and in
/// place of `hello`: `echo` on core and shared (a 1 s timeout, 512 MB and
/// variables of its own) and `plain` on shared alone.
fn config() -> App {
    App::standard()
        .without("functions.hello")
        .layer(
            "vendor",
            &[
                "arn = \"arn:aws:lambda:us-east-1:123456789012:layer:vendor:1\"",
                "unzipped_size = \"1 MiB\"",
            ],
        )
        .function("echo", "echo.lambda_handler", &["core", "shared"])
        .key("functions.echo", "timeout = \"1 s\"")
        .key("functions.echo", "memory = 512")
        .key(
            "functions.echo",
            "environment = { GREETING = \"hello\", FROM_TOML = \"yes\" }",
        )
        .function("plain", "plain.lambda_handler", &["shared"])
}

/// Answers with what it saw: its event, the tool's module, the user it
/// runs as and whether it may write its own code.
const ECHO: &str = r#"
import os

import shared
import tool


def lambda_handler(event, context):
    if event.get("raise"):
        raise ValueError("bad input: " + event["raise"])
    if event.get("sleep"):
        import time
        time.sleep(event["sleep"])
    if event.get("big"):
        return "A" * event["big"]
    try:
        open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "scratch"), "w").close()
        writable = True
    except OSError:
        writable = False
    print("echo saw", sorted(event))
    return {
        "statusCode": 200,
        "event": event,
        "tool": tool.X,
        "shared": shared.NAME,
        "uid": os.getuid(),
        "task_writable": writable,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "greeting": os.environ.get("GREETING"),
        "from_toml": os.environ.get("FROM_TOML"),
        "memory": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "env": dict(os.environ),
    }
"#;

const PLAIN: &str =
    "import shared\n\n\ndef lambda_handler(event, context):\n    return {\"statusCode\": 200}\n";

fn app() -> Repo {
    let repo = config().repo();
    repo.write("lambdas/echo/echo.py", ECHO);
    repo.write("lambdas/plain/plain.py", PLAIN);
    repo
}

/// `invoke ARGS` on the host, with an empty stand-in for the runtime's
/// site-packages; fails the test where this host cannot run the function.
fn invoke(repo: &Repo, args: &[&str]) -> Run {
    let site = repo.path().join("runtime-site");
    fs::create_dir_all(&site).unwrap();
    let mut all = vec!["invoke", "--builder", "host"];
    all.extend_from_slice(args);
    let run = repo.xtask_with(&all, &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())]);
    assert!(
        !run.stderr().contains("cannot run here"),
        "this test runs functions, and this host cannot: {}",
        run.stderr().trim()
    );
    run
}

fn response(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout().trim()).unwrap_or_else(|err| panic!("{err}: {}", run.stdout()))
}

fn root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// A ZIP made elsewhere (`zip -r` keeps modes) with a 0600 file: the
/// sandbox user cannot read it, as on Lambda.
fn vendor_zip(repo: &Repo, mode: u32) -> String {
    let script = format!(
        "import zipfile\n\
         with zipfile.ZipFile('vendor.zip', 'w') as z:\n    \
         info = zipfile.ZipInfo('python/vendored.py')\n    \
         info.external_attr = (0o100000 | {mode:#o}) << 16\n    \
         z.writestr(info, 'VALUE = 7\\n')\n"
    );
    let status = Command::new("python3")
        .args(["-c", &script])
        .current_dir(repo.path())
        .status()
        .unwrap();
    assert!(status.success());
    "vendor=vendor.zip".to_string()
}

#[test]
fn bad_usage_and_bad_events_exit_2() {
    let repo = app();
    repo.write("events/broken.json", "{\n  \"a\": 1,\n  oops\n}\n");
    repo.xtask(&[
        "invoke",
        "--builder",
        "host",
        "echo",
        "--event",
        "events/broken.json",
    ])
    .fails_with(2, "events/broken.json: not JSON: line 3");
    repo.xtask(&["invoke", "--builder", "host"])
        .fails_with(2, "invoke takes one FUNCTION, or --all");
    repo.xtask(&["invoke", "--builder", "host", "echo", "plain"])
        .fails_with(2, "invoke takes one FUNCTION");
    repo.xtask(&["invoke", "--builder", "host", "nope"])
        .fails_with(2, "unknown function `nope`");
    repo.xtask(&["invoke", "--builder", "host", "echo", "--env", "NOEQUALS"])
        .fails_with(2, "--env: `NOEQUALS` is not KEY=VALUE");
    repo.xtask(&["invoke", "--builder", "host", "echo", "--event", "missing.json"])
        .fails_with(2, "--event: cannot read");
    repo.xtask(&["invoke", "--builder", "host", "--all"])
        .fails_with(2, "no sample events");
    repo.xtask(&["invoke", "--json", "echo"])
        .fails_with(2, "`invoke` takes no --json");
}

/// `--dry-run` shows what `invoke` would bring up to date, and starts nothing.
#[test]
fn the_dry_run_touches_nothing() {
    let repo = app();
    let run = repo.xtask(&["invoke", "echo", "--builder", "host", "--dry-run"]);
    assert!(
        run.success().stdout().contains("function echo: not built yet"),
        "{}",
        run.stdout()
    );
    assert!(!repo.path().join("target").exists());
    assert!(!repo.path().join("dist").exists());
}

/// Starts two `sleep 300` (one in its own session, out of the runtime's
/// process group) and says their pids; with a `channel` folder, writes the
/// Runtime API's address and its request id there and waits for `release`.
const SPAWNER: &str = r#"
import os
import subprocess
import time


def lambda_handler(event, context):
    kept = subprocess.Popen(["sleep", "300"])
    left = subprocess.Popen(["sleep", "300"], start_new_session=True)
    print("spawned", os.getpid(), kept.pid, left.pid, flush=True)
    channel = event.get("channel")
    if channel:
        with open(os.path.join(channel, "addr.tmp"), "w") as out:
            out.write(os.environ["AWS_LAMBDA_RUNTIME_API"] + " " + context.aws_request_id)
        os.rename(os.path.join(channel, "addr.tmp"), os.path.join(channel, "addr"))
        for _ in range(1000):
            if os.path.exists(os.path.join(channel, "release")):
                break
            time.sleep(0.05)
        return {"statusCode": 500, "genuine": True}
    time.sleep(event.get("sleep", 0))
    return {"statusCode": 200}
"#;

/// The app with a `spawner` function of this timeout.
fn spawner_app(timeout: &str) -> Repo {
    let repo = app();
    let spawner = config()
        .function("spawner", "spawner.lambda_handler", &["shared"])
        .key("functions.spawner", &format!("timeout = \"{timeout}\""))
        .key(
            "functions.spawner",
            "environment = { PROBE = \"ps-probe-7f3a9c\" }",
        );
    repo.set_metadata(&spawner.metadata());
    repo.write("lambdas/spawner/spawner.py", SPAWNER);
    repo
}

/// The pids of `spawned RUNTIME KEPT LEFT` in the function's logs.
fn spawned(logs: &str) -> Vec<u32> {
    let line = logs
        .lines()
        .find_map(|line| line.split_once("spawned ").map(|(_, pids)| pids.to_string()))
        .unwrap_or_else(|| panic!("no pids in: {logs}"));
    line.split_whitespace().map(|pid| pid.parse().unwrap()).collect()
}

/// Whether a process runs (a zombie has ended: only its wait is missing).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

fn no_layout_left(repo: &Repo) {
    let sandboxes = repo.path().join("target/lambda/sandbox");
    let left: Vec<_> = fs::read_dir(&sandboxes)
        .map(|items| items.flatten().map(|item| item.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "layout folders left: {left:?}");
}

/// `cargo xtask invoke` started in the background, its stderr lines on a
/// channel (a thread reads them: a leftover process may hold the pipe).
fn invoke_in_background(
    repo: &Repo,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let site = repo.path().join("runtime-site");
    fs::create_dir_all(&site).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(repo.path())
        .env("XTASK_RUNTIME_SITE", &site)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, received)
}

/// The function's `spawned` pids, once it has said them; what `invoke` said
/// when it ended first.
fn wait_for_spawned(
    child: &mut std::process::Child,
    lines: &std::sync::mpsc::Receiver<String>,
) -> Result<Vec<u32>, String> {
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while std::time::Instant::now() < deadline {
        match lines.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("spawned ") {
                    return Ok(spawned(&line));
                }
            }
            Err(_) => {
                if child.try_wait().unwrap().is_some() {
                    return Err(seen);
                }
            }
        }
    }
    let _ = child.kill();
    panic!("the function never started: {seen}");
}

/// SIGTERM (or `signal`), then `invoke`'s end, within a bound.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    signal(child, "-TERM")
}

fn signal(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("invoke did not end after SIGTERM");
}

fn signal_ends_the_runtime_and_its_layout(name: &str) {
    let repo = spawner_app("60 s");
    repo.write("events/hang.json", "{\"sleep\": 300}");
    let (mut child, lines) = invoke_in_background(
        &repo,
        &[
            "invoke",
            "--builder",
            "host",
            "spawner",
            "--event",
            "events/hang.json",
        ],
    );
    let pids = match wait_for_spawned(&mut child, &lines) {
        Ok(pids) => pids,
        Err(said) => panic!("invoke ended before the function ran: {said}"),
    };
    let status = signal(&mut child, name);
    assert!(!status.success(), "{status}");
    let left: Vec<u32> = pids.into_iter().filter(|&pid| alive(pid)).collect();
    assert!(left.is_empty(), "still running after {name}: {left:?}");
    no_layout_left(&repo);
}

#[test]
fn an_event_over_lambdas_limit_is_refused_before_the_function_starts() {
    let repo = app();
    let limit = 6_291_456;
    let padding = "x".repeat(limit + 1 - "{\"a\": \"\"}".len());
    repo.write("events/big.json", &format!("{{\"a\": \"{padding}\"}}"));
    let run = repo.xtask(&[
        "invoke",
        "--builder",
        "host",
        "echo",
        "--event",
        "events/big.json",
    ]);
    run.fails_with(
        2,
        "events/big.json: the event is 6291457 bytes, over Lambda's limit of 6291456 bytes",
    );
    assert!(!run.stderr().contains("REPORT"), "{}", run.stderr());
    assert!(!repo.path().join("target/lambda/sandbox").exists());
    let mut stdin = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["invoke", "--builder", "host", "echo", "--event", "-"])
        .current_dir(repo.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = stdin.stdin.take().unwrap();
    let event = format!("{{\"a\": \"{padding}\"}}");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(event.as_bytes());
    });
    let run = Run(stdin.wait_with_output().unwrap());
    writer.join().unwrap();
    run.fails_with(
        2,
        "--event -: the event on stdin is over Lambda's limit of 6291456 bytes",
    );
    repo.write(
        "lambdas/events/echo/big.json",
        &format!("{{\"a\": \"{padding}\"}}"),
    );
    repo.write("lambdas/events/echo/expect.json", "{\"big\": 200}");
    repo.xtask(&["invoke", "--builder", "host", "--all"])
        .fails_with(2, "lambdas/events/echo/big.json: the event is 6291457 bytes");
}

/// Tests that run functions under AWS's runtime interface client: ignored
/// by a plain `cargo test`, run by `-- --ignored needs_runtime`, and failed
/// by [`support::require_runtime`] where `XTASK_RUNTIME_CLIENT` names none.
mod needs_runtime {
    use super::*;

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn an_event_gets_its_response_logs_and_a_report() {
        support::require_runtime();
        let repo = app();
        repo.write("events/hello.json", "{\"name\": \"world\"}\n");
        let run = invoke(
            &repo,
            &["echo", "--event", "events/hello.json", "--env", "GREETING=hi"],
        );
        run.success();
        let answer = response(&run);
        assert_eq!(answer["event"]["name"], "world");
        assert_eq!(answer["tool"], 1);
        assert_eq!(answer["shared"], "shared");
        assert_eq!(
            answer["greeting"], "hi",
            "--env wins over Cargo.toml's environment"
        );
        assert_eq!(
            answer["from_toml"], "yes",
            "Cargo.toml's environment reaches the function"
        );
        assert_eq!(
            answer["memory"], "512",
            "the configured memory, as Lambda sets it"
        );
        assert_eq!(answer["task_writable"], false, "/var/task is read-only");
        if root() {
            assert_eq!(answer["uid"], 993, "the sandbox user, not root");
        }
        let remaining = answer["remaining_ms"].as_i64().unwrap();
        assert!(remaining > 0 && remaining <= 1000, "{answer}");
        let stderr = run.stderr();
        assert!(
            stderr.contains("echo saw ['name']"),
            "the function's logs: {stderr}"
        );
        let report = stderr
            .lines()
            .find(|line| line.starts_with("REPORT RequestId: "))
            .expect(&stderr);
        let request_id = answer["request_id"].as_str().unwrap();
        assert!(report.contains(request_id), "{report}");
        for field in [
            "Duration: ",
            "Billed Duration: ",
            "Memory Size: 512 MB",
            "Max Memory Used: ",
            "Init Duration: ",
        ] {
            assert!(report.contains(field), "{report}");
        }
        assert!(!report.contains("Max Memory Used: ? MB"), "{report}");
        // The sandbox is gone.
        let left: Vec<_> = fs::read_dir(repo.path().join("target/lambda/sandbox"))
            .unwrap()
            .flatten()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn an_event_from_stdin_and_the_default_event() {
        support::require_runtime();
        let repo = app();
        let run = invoke(&repo, &["echo"]);
        assert_eq!(response(run.success())["event"], serde_json::json!({}));
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(["invoke", "--builder", "host", "echo", "--event", "-"])
            .current_dir(repo.path())
            .env("XTASK_RUNTIME_SITE", repo.path().join("runtime-site"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"{\"from\": \"stdin\"}")
            .unwrap();
        let run = Run(child.wait_with_output().unwrap());
        assert_eq!(response(run.success())["event"]["from"], "stdin");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn an_exception_while_handling_is_a_function_error() {
        support::require_runtime();
        let repo = app();
        repo.write("events/bad.json", "{\"raise\": \"nope\"}");
        let run = invoke(&repo, &["echo", "--event", "events/bad.json"]);
        run.fails_with(1, "echo: ValueError: bad input: nope");
        let error = response(&run);
        assert_eq!(error["errorType"], "ValueError");
        assert!(
            error["stackTrace"].to_string().contains("/var/task/echo.py"),
            "{error}"
        );
        assert!(
            run.stderr().contains("[ERROR] ValueError: bad input: nope"),
            "{}",
            run.stderr()
        );
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_handler_that_hangs_is_stopped_at_its_timeout() {
        support::require_runtime();
        let repo = app();
        repo.write("events/slow.json", "{\"sleep\": 30}");
        let run = invoke(&repo, &["echo", "--event", "events/slow.json"]);
        run.fails_with(1, "Sandbox.Timedout: Task timed out after 1.00 seconds");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_wrong_handler_name_is_handler_not_found() {
        support::require_runtime();
        let repo = app();
        repo.set_metadata(&config().function("plain", "plain.handle", &["shared"]).metadata());
        repo.write(
            "lambdas/plain/plain.py",
            &format!("{PLAIN}\nhandle = None\ndel handle\n"),
        );
        let run = invoke(&repo, &["plain"]);
        run.fails_with(
            1,
            "Runtime.HandlerNotFound: Handler 'handle' missing on module 'plain'",
        );
        assert_eq!(response(&run)["errorType"], "Runtime.HandlerNotFound");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_handler_that_is_not_callable_fails_when_invoked() {
        support::require_runtime();
        let repo = app();
        repo.write(
            "lambdas/plain/plain.py",
            "def lambda_handler(event, context):\n    pass\n\n\nlambda_handler = 42\n",
        );
        let run = invoke(&repo, &["plain"]);
        run.fails_with(1, "plain: TypeError: 'int' object is not callable");
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_syntax_error_is_user_code_syntax_error() {
        support::require_runtime();
        let repo = app();
        // The handler parses; the module it imports from the shared layer does not.
        repo.write("lambdas/shared/broken.py", "def oops(:\n    pass\n");
        repo.write(
            "lambdas/plain/plain.py",
            &format!("import shared.broken\n{PLAIN}"),
        );
        let run = invoke(&repo, &["plain"]);
        run.fails_with(1, "Runtime.UserCodeSyntaxError: Syntax error in module 'plain'");
        assert!(
            run.stderr().contains("/opt/python/shared/broken.py"),
            "{}",
            run.stderr()
        );
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_layer_missing_from_a_function_is_named() {
        support::require_runtime();
        let repo = app();
        repo.write("lambdas/plain/plain.py", &format!("import tool\n{PLAIN}"));
        let run = invoke(&repo, &["plain"]);
        run.fails_with(
            1,
            "Runtime.ImportModuleError: Unable to import module 'plain': No module named 'tool'",
        );
        assert!(
            run.stderr()
                .contains("layer `core` provides it but is not attached to `plain`"),
            "{}",
            run.stderr()
        );
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_0600_file_in_a_layer_is_permission_denied() {
        support::require_runtime();
        let repo = app();
        let with_vendor = config().function("plain", "plain.lambda_handler", &["shared", "vendor"]);
        repo.set_metadata(&with_vendor.metadata());
        repo.write("lambdas/plain/plain.py", &format!("import vendored\n{PLAIN}"));
        let readable = vendor_zip(&repo, 0o644);
        let run = invoke(&repo, &["plain", "--layer", &readable]);
        run.success();
        let private = vendor_zip(&repo, 0o600);
        let run = invoke(&repo, &["plain", "--layer", &private]);
        // Not an ImportError: the runtime reports the exception's own type.
        run.fails_with(
            1,
            "PermissionError: [Errno 13] Permission denied: '/opt/python/vendored.py'",
        );
        assert!(
            !run.stderr().contains("target/lambda/sandbox"),
            "{}",
            run.stderr()
        );
        // Without the local copy, the external layer is named, not blamed.
        let run = invoke(&repo, &["plain"]);
        run.fails_with(1, "No module named 'vendored'");
        assert!(run.stderr().contains("--layer vendor=ZIP"), "{}", run.stderr());
    }

    /// What the tool builds cannot carry that mistake: its ZIP writer gives
    /// every file 0644 (0755 when executable), whatever the mode on disk.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_0600_file_in_a_source_layer_ships_readable() {
        support::require_runtime();
        let repo = app();
        let secretish = repo.write("lambdas/shared/private.py", "VALUE = 7\n");
        fs::set_permissions(&secretish, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        repo.write(
            "lambdas/plain/plain.py",
            &format!("import shared.private\n{PLAIN}"),
        );
        let run = invoke(&repo, &["plain"]);
        assert_eq!(response(run.success())["statusCode"], 200);
    }

    /// `--all`: every sample event, its expected status, and a local fake
    /// started from `<events>/fakes.py` whose variables reach the function.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn all_sample_events_answer_as_expected() {
        support::require_runtime();
        let repo = app();
        repo.write("lambdas/requirements-dev.txt", "");
        repo.write(
            "lambdas/events/fakes.py",
            "import json, sys\nprint(json.dumps({'env': {'echo': {'GREETING': 'from the fakes'}}}), flush=True)\nsys.stdin.read()\n",
        );
        repo.write("lambdas/events/echo/ok.json", "{\"name\": \"a\"}");
        repo.write("lambdas/events/echo/fails.json", "{\"raise\": \"x\"}");
        repo.write("lambdas/events/echo/expect.json", "{\"ok\": 200, \"fails\": 200}");
        repo.write("lambdas/events/plain/ok.json", "{}");
        repo.write("lambdas/events/plain/expect.json", "{\"ok\": 201}");
        let run = invoke(&repo, &["--all"]);
        run.fails_with(1, "echo fails: ValueError: bad input: x");
        let stderr = run.stderr();
        assert!(stderr.contains("plain ok: expected 201, got 200"), "{stderr}");
        assert!(
            stderr.contains("1 of 3 event(s) answered as expected"),
            "{stderr}"
        );

        repo.write("lambdas/events/echo/expect.json", "{\"ok\": 200}");
        repo.xtask(&["invoke", "--builder", "host", "--all"]).fails_with(
            2,
            "lambdas/events/echo/expect.json: no expectation for event `fails`",
        );
        fs::remove_file(repo.path().join("lambdas/events/echo/fails.json")).unwrap();
        repo.write("lambdas/events/plain/expect.json", "{\"ok\": 200}");
        let run = invoke(&repo, &["--all"]);
        run.success();
        assert!(
            run.stderr().contains("2 of 2 event(s) answered as expected"),
            "{}",
            run.stderr()
        );
    }

    /// A process the handler leaves behind does not keep `invoke` waiting,
    /// and does not outlive it: the run's end ends the function's whole tree.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn the_end_of_the_run_ends_what_the_function_started() {
        support::require_runtime();
        let repo = spawner_app("5 s");
        let run = invoke(&repo, &["spawner"]);
        assert_eq!(response(run.success())["statusCode"], 200);
        let pids = spawned(&run.stderr());
        let left: Vec<u32> = pids.into_iter().filter(|&pid| alive(pid)).collect();
        assert!(left.is_empty(), "still running: {left:?}");
        no_layout_left(&repo);
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_timed_out_handler_leaves_no_process_behind() {
        support::require_runtime();
        let repo = spawner_app("1 s");
        repo.write("events/hang.json", "{\"sleep\": 300}");
        let run = invoke(&repo, &["spawner", "--event", "events/hang.json"]);
        run.fails_with(1, "Sandbox.Timedout: Task timed out after 1.00 seconds");
        let pids = spawned(&run.stderr());
        assert_eq!(pids.len(), 3, "{pids:?}");
        let left: Vec<u32> = pids.into_iter().filter(|&pid| alive(pid)).collect();
        assert!(left.is_empty(), "still running after the timeout: {left:?}");
        no_layout_left(&repo);
    }

    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn sigterm_to_invoke_ends_the_runtime_and_its_layout() {
        support::require_runtime();
        signal_ends_the_runtime_and_its_layout("-TERM");
    }

    /// Ctrl-C reaches xtask alone: the runtime has its own process group.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn sigint_to_invoke_ends_the_runtime_and_its_layout() {
        support::require_runtime();
        signal_ends_the_runtime_and_its_layout("-INT");
    }

    /// Another local process finds the Runtime API's address and tries to
    /// answer the invocation (and to take the next): it is refused, and
    /// `invoke --all` reports the function's own answer.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_second_local_client_can_neither_take_nor_answer() {
        support::require_runtime();
        let repo = spawner_app("60 s");
        let channel = repo.path().join("channel");
        fs::create_dir_all(&channel).unwrap();
        fs::set_permissions(&channel, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        repo.write(
            "lambdas/events/spawner/one.json",
            &format!("{{\"channel\": \"{}\"}}", channel.display()),
        );
        repo.write("lambdas/events/spawner/expect.json", "{\"one\": 200}");
        let thief_channel = channel.clone();
        let thief = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let addr = thief_channel.join("addr");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            while !addr.exists() {
                assert!(std::time::Instant::now() < deadline, "the function never ran");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let text = fs::read_to_string(&addr).unwrap();
            let (api, request_id) = text.split_once(' ').unwrap();
            let ask = |request: String| {
                let Ok(mut stream) = std::net::TcpStream::connect(api) else {
                    return "refused: the run was over".to_string();
                };
                stream
                    .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                let _ = stream.write_all(request.as_bytes());
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).into_owned()
            };
            let forged = "{\"statusCode\": 200, \"forged\": true}";
            let posted = ask(format!(
                "POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nContent-Length: {}\r\n\r\n{forged}",
                forged.len()
            ));
            let taken = ask("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n".to_string());
            fs::write(thief_channel.join("release"), "").unwrap();
            (posted, taken)
        });
        let run = invoke(&repo, &["--all"]);
        let (posted, taken) = thief.join().unwrap();
        assert!(posted.starts_with("HTTP/1.1 403"), "the forged answer: {posted}");
        assert!(taken.starts_with("HTTP/1.1 403"), "the stolen request: {taken}");
        run.fails_with(1, "spawner one: expected 200, got 500");
    }

    /// A response over Lambda's limit is the error Lambda reports for it.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn a_response_over_lambdas_limit_is_response_size_too_large() {
        support::require_runtime();
        let repo = app();
        repo.write("events/big.json", "{\"big\": 7000000}");
        let run = invoke(&repo, &["echo", "--event", "events/big.json"]);
        run.fails_with(1, "echo: Function.ResponseSizeTooLarge: Response payload size exceeded maximum allowed payload size (6291556 bytes)");
    }

    /// The function sees Lambda's variables, its own and `--env`'s, and
    /// nothing else of the environment `invoke` was started with.
    #[test]
    #[ignore = "needs the runtime interface client in XTASK_RUNTIME_CLIENT (cargo xtask ci runs it)"]
    fn the_function_sees_only_an_allowed_environment() {
        support::require_runtime();
        let repo = app();
        let site = repo.path().join("runtime-site");
        fs::create_dir_all(&site).unwrap();
        let run = repo.xtask_with(
            &["invoke", "--builder", "host", "echo", "--env", "GREETING=hi"],
            &[
                ("XTASK_RUNTIME_SITE", site.to_str().unwrap()),
                ("AWS_SECRET_ACCESS_KEY", "the-shells-real-secret"),
                ("SOME_TOKEN", "the-shells-token"),
            ],
        );
        let env = response(run.success())["env"].clone();
        let names: Vec<&String> = env.as_object().unwrap().keys().collect();
        let allowed = |name: &str| {
            ["AWS_", "LAMBDA_", "_HANDLER", "_X_AMZN_", "LC_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || [
                    "PATH",
                    "HOME",
                    "LANG",
                    "TZ",
                    "PYTHONDONTWRITEBYTECODE",
                    "GREETING",
                    "FROM_TOML",
                ]
                .contains(&name)
        };
        let stray: Vec<&&String> = names.iter().filter(|name| !allowed(name)).collect();
        assert!(stray.is_empty(), "{stray:?} in {env}");
        assert!(!env.to_string().contains("the-shells-"), "{env}");
        assert_eq!(env["GREETING"], "hi");
    }
}

/// Tests that need a container engine (docker or podman) with the test
/// image: ignored by a plain `cargo test`, run by `-- --ignored needs_engine`,
/// and failed by [`support::require_engine`] where there is none.
mod needs_engine {
    use super::*;

    #[test]
    #[ignore = "needs a container engine with the test image, and the runtime interface client (cargo xtask ci runs it)"]
    fn the_container_runs_the_function_as_lambda_does() {
        support::require_engine();
        support::require_runtime();
        let repo = app();
        repo.write("events/hello.json", "{\"name\": \"container\"}");
        let site = repo.path().join("runtime-site");
        fs::create_dir_all(&site).unwrap();
        let run = repo.xtask_with(
            &[
                "invoke",
                "--builder",
                "host",
                "--runner",
                "container",
                "--image",
                support::TEST_IMAGE,
                "echo",
                "--event",
                "events/hello.json",
            ],
            &[
                ("XTASK_RUNTIME_SITE", site.to_str().unwrap()),
                ("SOME_TOKEN", "the-shells-token"),
            ],
        );
        let answer = response(run.success());
        assert_eq!(answer["event"]["name"], "container");
        // Only the variables named to the engine reach the function.
        let env = &answer["env"];
        assert!(!env.to_string().contains("the-shells-token"), "{env}");
        assert_eq!(env["FROM_TOML"], "yes", "{env}");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo", "{env}");
        assert_eq!(env["HOME"], "/tmp", "{env}");
        assert_eq!(answer["uid"], 993);
        assert_eq!(answer["task_writable"], false);
        assert!(run.stderr().contains("REPORT RequestId: "), "{}", run.stderr());
        let repo_timeout = repo.xtask_with(
            &[
                "invoke",
                "--builder",
                "host",
                "--runner",
                "container",
                "--image",
                support::TEST_IMAGE,
                "echo",
                "--event",
                "-",
            ],
            &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())],
        );
        // stdin is empty here: not JSON.
        repo_timeout.fails_with(2, "not JSON");
    }

    /// In the build image: SIGTERM removes the container; while it ran, no
    /// command line showed the function's variables (`--env NAME` only).
    #[test]
    #[ignore = "needs a container engine with the test image, and the runtime interface client (cargo xtask ci runs it)"]
    fn sigterm_to_invoke_in_a_container_removes_it() {
        let engine = support::require_engine();
        support::require_runtime();
        let repo = spawner_app("60 s");
        repo.write("events/hang.json", "{\"sleep\": 300}");
        let (mut child, lines) = invoke_in_background(
            &repo,
            &[
                "invoke",
                "--builder",
                "host",
                "--runner",
                "container",
                "--image",
                support::TEST_IMAGE,
                "spawner",
                "--event",
                "events/hang.json",
            ],
        );
        let said = wait_for_spawned(&mut child, &lines);
        assert!(said.is_ok(), "{said:?}");
        let shown: Vec<String> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| fs::read(entry.path().join("cmdline")).ok())
            .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
            .filter(|cmdline| cmdline.contains("ps-probe-7f3a9c"))
            .collect();
        let name = format!("name=xtask-lambda-{}-", child.id());
        let containers = |engine: &str| {
            let output = Command::new(engine)
                .args(["ps", "--all", "--quiet", "--filter", &name])
                .output()
                .unwrap();
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        };
        assert!(!containers(engine).is_empty(), "the container runs");
        let status = terminate(&mut child);
        assert!(!status.success(), "{status}");
        assert_eq!(containers(engine), "", "the container is gone");
        no_layout_left(&repo);
        assert!(
            shown.is_empty(),
            "a variable's value on a command line: {shown:?}"
        );
    }
}
