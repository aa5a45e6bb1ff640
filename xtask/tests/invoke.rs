//! `invoke` against small applications built by the tests, under AWS's
//! runtime interface client: responses, Lambda's error types and exit 1
//! for every way a function fails (a 0600 file in a layer, a missing
//! layer, a wrong handler, a syntax error, an exception, a timeout), the
//! sandbox (non-root, read-only code), bad events, and `--all`.

mod support;

use std::fs;
use std::process::Command;

use support::{Repo, Run};

const APP: &str = r#"
[workspace.metadata.lambda]
runtime = "python3.11"

[workspace.metadata.lambda.layers.core]
requirements = "layers/core/requirements.txt"

[workspace.metadata.lambda.layers.shared]
source = "lambdas/shared"

[workspace.metadata.lambda.layers.vendor]
arn = "arn:aws:lambda:us-east-1:123456789012:layer:vendor:1"
unzipped_size = "1 MiB"

[workspace.metadata.lambda.functions.echo]
source = "lambdas/echo"
handler = "echo.lambda_handler"
layers = ["core", "shared"]
timeout = "1 s"
memory = 512
environment = { GREETING = "hello", FROM_TOML = "yes" }

[workspace.metadata.lambda.functions.plain]
source = "lambdas/plain"
handler = "plain.lambda_handler"
layers = ["shared"]
"#;

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
    }
"#;

const PLAIN: &str =
    "import shared\n\n\ndef lambda_handler(event, context):\n    return {\"statusCode\": 200}\n";

fn app() -> Repo {
    let repo = Repo::new(APP);
    repo.profile("core", &["tool==1.0"]);
    repo.wheel("core", "tool", "1.0", &[("tool.py", "X = 1\n")], &[]);
    repo.write("lambdas/shared/__init__.py", "NAME = 'shared'\n");
    repo.write("lambdas/echo/echo.py", ECHO);
    repo.write("lambdas/plain/plain.py", PLAIN);
    repo
}

/// `invoke ARGS` on the host, with an empty stand-in for the runtime's
/// site-packages; `None` where this host has no Python 3.11 to run it.
fn invoke(repo: &Repo, args: &[&str]) -> Option<Run> {
    let site = repo.path().join("runtime-site");
    fs::create_dir_all(&site).unwrap();
    let mut all = vec!["invoke", "--builder", "host"];
    all.extend_from_slice(args);
    let run = repo.xtask_with(&all, &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())]);
    if run.code() == 2 && run.stderr().contains("cannot run here") {
        eprintln!("SKIPPED: {}", run.stderr().trim());
        return None;
    }
    Some(run)
}

fn response(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout().trim()).unwrap_or_else(|err| panic!("{err}: {}", run.stdout()))
}

fn root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

#[test]
fn an_event_gets_its_response_logs_and_a_report() {
    let repo = app();
    repo.write("events/hello.json", "{\"name\": \"world\"}\n");
    let Some(run) = invoke(
        &repo,
        &["echo", "--event", "events/hello.json", "--env", "GREETING=hi"],
    ) else {
        return;
    };
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
fn an_event_from_stdin_and_the_default_event() {
    let repo = app();
    let Some(run) = invoke(&repo, &["echo"]) else {
        return;
    };
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
fn an_exception_while_handling_is_a_function_error() {
    let repo = app();
    repo.write("events/bad.json", "{\"raise\": \"nope\"}");
    let Some(run) = invoke(&repo, &["echo", "--event", "events/bad.json"]) else {
        return;
    };
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
fn a_handler_that_hangs_is_stopped_at_its_timeout() {
    let repo = app();
    repo.write("events/slow.json", "{\"sleep\": 30}");
    let Some(run) = invoke(&repo, &["echo", "--event", "events/slow.json"]) else {
        return;
    };
    run.fails_with(1, "Sandbox.Timedout: Task timed out after 1.00 seconds");
}

#[test]
fn a_wrong_handler_name_is_handler_not_found() {
    let repo = app();
    repo.set_metadata(&APP.replace("handler = \"plain.lambda_handler\"", "handler = \"plain.handle\""));
    repo.write(
        "lambdas/plain/plain.py",
        &format!("{PLAIN}\nhandle = None\ndel handle\n"),
    );
    let Some(run) = invoke(&repo, &["plain"]) else {
        return;
    };
    run.fails_with(
        1,
        "Runtime.HandlerNotFound: Handler 'handle' missing on module 'plain'",
    );
    assert_eq!(response(&run)["errorType"], "Runtime.HandlerNotFound");
}

#[test]
fn a_handler_that_is_not_callable_fails_when_invoked() {
    let repo = app();
    repo.write(
        "lambdas/plain/plain.py",
        "def lambda_handler(event, context):\n    pass\n\n\nlambda_handler = 42\n",
    );
    let Some(run) = invoke(&repo, &["plain"]) else {
        return;
    };
    run.fails_with(1, "plain: TypeError: 'int' object is not callable");
}

#[test]
fn a_syntax_error_is_user_code_syntax_error() {
    let repo = app();
    // The handler parses; the module it imports from the shared layer does not.
    repo.write("lambdas/shared/broken.py", "def oops(:\n    pass\n");
    repo.write(
        "lambdas/plain/plain.py",
        &format!("import shared.broken\n{PLAIN}"),
    );
    let Some(run) = invoke(&repo, &["plain"]) else {
        return;
    };
    run.fails_with(1, "Runtime.UserCodeSyntaxError: Syntax error in module 'plain'");
    assert!(
        run.stderr().contains("/opt/python/shared/broken.py"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_layer_missing_from_a_function_is_named() {
    let repo = app();
    repo.write("lambdas/plain/plain.py", &format!("import tool\n{PLAIN}"));
    let Some(run) = invoke(&repo, &["plain"]) else {
        return;
    };
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
fn a_0600_file_in_a_layer_is_permission_denied() {
    let repo = app();
    repo.set_metadata(&APP.replace("layers = [\"shared\"]", "layers = [\"shared\", \"vendor\"]"));
    repo.write("lambdas/plain/plain.py", &format!("import vendored\n{PLAIN}"));
    let readable = vendor_zip(&repo, 0o644);
    let Some(run) = invoke(&repo, &["plain", "--layer", &readable]) else {
        return;
    };
    run.success();
    let private = vendor_zip(&repo, 0o600);
    let run = invoke(&repo, &["plain", "--layer", &private]).unwrap();
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
    let run = invoke(&repo, &["plain"]).unwrap();
    run.fails_with(1, "No module named 'vendored'");
    assert!(run.stderr().contains("--layer vendor=ZIP"), "{}", run.stderr());
}

/// What the tool builds cannot carry that mistake: its ZIP writer gives
/// every file 0644 (0755 when executable), whatever the mode on disk.
#[test]
fn a_0600_file_in_a_source_layer_ships_readable() {
    let repo = app();
    let secretish = repo.write("lambdas/shared/private.py", "VALUE = 7\n");
    fs::set_permissions(&secretish, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    repo.write(
        "lambdas/plain/plain.py",
        &format!("import shared.private\n{PLAIN}"),
    );
    let Some(run) = invoke(&repo, &["plain"]) else {
        return;
    };
    assert_eq!(response(run.success())["statusCode"], 200);
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

/// `--all`: every sample event, its expected status, and a local fake
/// started from `<events>/fakes.py` whose variables reach the function.
#[test]
fn all_sample_events_answer_as_expected() {
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
    let Some(run) = invoke(&repo, &["--all"]) else {
        return;
    };
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
    let run = invoke(&repo, &["--all"]).unwrap();
    run.success();
    assert!(
        run.stderr().contains("2 of 2 event(s) answered as expected"),
        "{}",
        run.stderr()
    );
}

#[test]
fn the_container_runs_the_function_as_lambda_does() {
    let Some(_) = support::engine_with_test_image() else {
        return;
    };
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
        &[("XTASK_RUNTIME_SITE", site.to_str().unwrap())],
    );
    let answer = response(run.success());
    assert_eq!(answer["event"]["name"], "container");
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

/// A process the handler leaves behind, holding the function's output
/// open, does not keep `invoke` waiting: `invoke` is done while it still runs.
#[test]
fn a_process_left_running_does_not_hold_invoke() {
    let repo = app();
    repo.write(
        "lambdas/plain/plain.py",
        "import subprocess\n\n\ndef lambda_handler(event, context):\n    subprocess.Popen(['sleep', '37.5'])\n    return {\"statusCode\": 200}\n",
    );
    let Some(run) = invoke(&repo, &["plain"]) else {
        return;
    };
    assert_eq!(response(run.success())["statusCode"], 200);
    let still = std::process::Command::new("pgrep")
        .args(["-f", "sleep 37.5"])
        .output()
        .unwrap();
    let _ = std::process::Command::new("pkill")
        .args(["-f", "sleep 37.5"])
        .status();
    assert!(
        still.status.success(),
        "invoke waited for the process the handler started"
    );
}
