"""The sample cases of lambdas/events: their events get their expected outcomes
against fakes.py, and their HTTP forms (requests.json) go out as written.

fakes.py runs as `cargo xtask invoke` runs it: a subprocess printing one line
of environment per function, stopped by closing its stdin. Each function then
handles all its events, in a row as a warm container would, in a fresh
interpreter that sees only that environment, fake AWS credentials and the
paths Lambda would give it (its folder, and lambdas/ for the ``shared``
layer). The handlers reach the fakes over 127.0.0.1 only.

send.py sends the HTTP forms to a recording server here: each arrives exactly
as requests.json writes it, and the event built from what arrived is the
committed event but for what describes the connection and the moment.
"""

from __future__ import annotations

import dataclasses
import json
import select
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import generate

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
EVENTS = LAMBDAS / "events"
FUNCTIONS = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"][
    "functions"
]
START_TIMEOUT_SECONDS = 30
RUN_TIMEOUT_SECONDS = 60

# argv: function folder, layers folder ("" for none), handler, event files.
RUNNER = """
import importlib, json, sys
from pathlib import Path
from types import SimpleNamespace

source, layers, handler_name, *events = sys.argv[1:]
sys.path[:0] = [source, layers] if layers else [source]
module, _, attribute = handler_name.rpartition(".")
handler = getattr(importlib.import_module(module), attribute)
outcomes = {}
for path in map(Path, events):
    context = SimpleNamespace(aws_request_id="events-" + path.stem, function_name=module)
    try:
        response = handler(json.loads(path.read_text()), context)
        if "policyDocument" in response:
            outcomes[path.stem] = response["policyDocument"]["Statement"][0]["Effect"]
        else:
            outcomes[path.stem] = response["statusCode"]
    except Exception as error:
        outcomes[path.stem] = "raised " + repr(error)
print(json.dumps(outcomes))
"""


# The one event the deployed API never sends (it did not pass the authorizer):
# it has no HTTP form.
UNSENDABLE = {("users", "unauthorized_no_context")}
# What describes the connection and the moment, not the request: through
# serve, these differ from the committed event (see generate.py).
CONNECTION_HEADERS = ("x-forwarded-for", "x-forwarded-port", "x-forwarded-proto")
CONNECTION_CONTEXT = ("requestId", "extendedRequestId", "requestTime", "requestTimeEpoch")


def event_files(function: str) -> list[Path]:
    not_events = ("expect.json", "requests.json")
    return sorted(p for p in (EVENTS / function).glob("*.json") if p.name not in not_events)


def expectations(function: str) -> dict[str, Any]:
    return json.loads((EVENTS / function / "expect.json").read_text())


def requests(function: str) -> dict[str, Any]:
    return json.loads((EVENTS / function / "requests.json").read_text())


def without_connection(event: dict[str, Any]) -> dict[str, Any]:
    """The event less what describes the connection and the moment."""
    event = json.loads(json.dumps(event))
    for key in ("headers", "multiValueHeaders"):
        for name in CONNECTION_HEADERS:
            event[key].pop(name, None)
    context = event["requestContext"]
    for key in CONNECTION_CONTEXT:
        context.pop(key, None)
    context["identity"].pop("sourceIp", None)
    context.get("authorizer", {}).pop("integrationLatency", None)
    return event


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class World:
    env: dict[str, dict[str, str]]
    runs: dict[str, Run]
    fakes_returncode: int
    fakes_stdout_after_env: bytes
    fakes_log: str


def read_line(process: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if ready else b""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("events-home")
    base_env = {"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    log_path = home / "fakes.log"
    runs: dict[str, Run] = {}
    with log_path.open("wb") as log:
        fakes = subprocess.Popen(
            [sys.executable, "-B", str(EVENTS / "fakes.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=base_env,
        )
        assert fakes.stdin is not None
        assert fakes.stdout is not None
        started = time.monotonic()
        processes: dict[str, subprocess.Popen[str]] = {}
        try:
            line = read_line(fakes, START_TIMEOUT_SECONDS)
            assert line, f"fakes.py printed no env line:\n{log_path.read_text()}"
            env = json.loads(line)["env"]
            print(f"fakes.py ready in {time.monotonic() - started:.2f} s")
            for name, function in sorted(FUNCTIONS.items()):
                function_env = {
                    **base_env,
                    **env[name],
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_REGION": "us-east-1",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
                layers = str(LAMBDAS) if function["layers"] else ""
                processes[name] = subprocess.Popen(
                    [
                        sys.executable,
                        "-I",
                        "-B",
                        "-c",
                        RUNNER,
                        str(ROOT / function["source"]),
                        layers,
                        function["handler"],
                        *map(str, event_files(name)),
                    ],
                    env=function_env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            for name, process in processes.items():
                stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
                runs[name] = Run(process.returncode, stdout, stderr)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.communicate()
            fakes.stdin.close()
            try:
                fakes.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fakes.kill()
                fakes.wait()
            rest = fakes.stdout.read()
            fakes.stdout.close()
    return World(env, runs, fakes.returncode, rest, log_path.read_text())


def test_every_event_has_one_expectation_and_every_expectation_an_event() -> None:
    folders = {
        path.name for path in EVENTS.iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    assert folders == set(FUNCTIONS)
    for function in FUNCTIONS:
        expected = expectations(function)
        assert set(expected) == {path.stem for path in event_files(function)}, function
        for name, outcome in expected.items():
            if function == "authorizer":
                assert outcome in ("Allow", "Deny"), (function, name)
            else:
                assert type(outcome) is int, (function, name)
                assert 100 <= outcome <= 599, (function, name)


def test_every_route_of_the_api_has_a_successful_event() -> None:
    """Each route of Cargo.toml gets an event its function answers 2xx or 3xx."""
    assert generate.ROUTES, "no routes in Cargo.toml"
    routes = {
        (key.split(" ", 1)[0], key.split(" ", 1)[1], function)
        for key, (function, _) in generate.ROUTES.items()
    }
    covered = set()
    for function in FUNCTIONS:
        expected = expectations(function)
        for path in event_files(function):
            event = json.loads(path.read_text())
            outcome = expected[path.stem]
            if outcome == "Allow" or (type(outcome) is int and 200 <= outcome < 400):
                covered.add((event["httpMethod"], event["resource"], function))
    assert routes <= covered
    assert any(function == "authorizer" for *_, function in covered)


def test_every_case_a_client_can_send_has_its_http_form() -> None:
    for function in FUNCTIONS:
        expected = expectations(function)
        forms = requests(function)
        assert set(forms) == {name for name in expected if (function, name) not in UNSENDABLE}
        for name, form in forms.items():
            where = f"{function}/{name}"
            assert list(form) == ["method", "target", "headers", "body", "status"], where
            if function == "authorizer":
                # Requests to a /users route: the function's answer, or API Gateway's 403.
                assert form["status"] == {"Allow": 200, "Deny": 403}[expected[name]], where
            else:
                assert form["status"] == expected[name], where
            names = [name for name, _ in form["headers"]]
            assert names == [name.lower() for name in names], where
            assert names.count("host") == 1, where
            assert not [name for name in names if name.startswith("x-forwarded-")], where
            lengths = [value for name, value in form["headers"] if name == "content-length"]
            body = form["body"]
            assert lengths == ([] if body is None else [str(len(body.encode()))]), where


def test_every_event_is_built_from_its_http_form() -> None:
    """Through requests.json: the form a client sends gives the committed event."""
    for function in FUNCTIONS:
        cases = generate.CASES[function]()
        for name, form in requests(function).items():
            case = dataclasses.replace(cases[name], form=as_form(form))
            committed = json.loads((EVENTS / function / f"{name}.json").read_text())
            assert generate.event_of(function, name, case) == committed, f"{function}/{name}"


def as_form(form: dict[str, Any]) -> generate.Form:
    headers = tuple((name, value) for name, value in form["headers"])
    return generate.Form(form["method"], form["target"], headers, form["body"])


@dataclass
class Arrived:
    """A request as the recording server read it off the wire."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class Recorder:
    """An HTTP/1.1 server on 127.0.0.1 that records each request and answers ``status(it)``."""

    def __init__(self, status: Callable[[Arrived], int]) -> None:
        self.arrived: list[Arrived] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                arrived = Arrived(
                    self.command, self.path, list(self.headers.items()), self.rfile.read(length)
                )
                recorder.arrived.append(arrived)
                code = status(arrived)
                body = b"" if code in (204, 304) else json.dumps({"answered": code}).encode()
                self.send_response(code)
                self.send_header("x-recorded", str(len(recorder.arrived)))
                if body:
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send_py(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-B", str(EVENTS / "send.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def all_forms() -> list[tuple[str, str, dict[str, Any]]]:
    """Every form, in the order of invoke --all: functions by name, cases by name."""
    return [
        (function, name, form)
        for function in sorted(FUNCTIONS)
        for name, form in sorted(requests(function).items())
    ]


def wire(form: dict[str, Any]) -> tuple[str, str, list[tuple[str, str]], bytes]:
    body = b"" if form["body"] is None else form["body"].encode()
    return form["method"], form["target"], [tuple(header) for header in form["headers"]], body


def test_send_py_sends_each_form_as_written_in_invoke_order() -> None:
    forms = all_forms()
    by_wire = {repr(wire(form)): form["status"] for _, _, form in forms}
    assert len(by_wire) == len(forms), "two cases send the same request"
    recorder = Recorder(
        lambda it: by_wire.get(repr((it.method, it.target, it.headers, it.body)), 599)
    )
    try:
        result = send_py(recorder.url(), "--json")
    finally:
        recorder.stop()
    assert result.returncode == 0, result.stderr
    assert len(recorder.arrived) == len(forms)
    answers = json.loads(result.stdout)
    arrivals = zip(forms, recorder.arrived, strict=True)
    for number, ((function, name, form), arrived) in enumerate(arrivals, start=1):
        where = f"{function}/{name}"
        # Exactly the form: no header added (Host, Accept-Encoding, Content-Length…), none changed.
        assert (arrived.method, arrived.target, arrived.headers, arrived.body) == wire(form), where
        answer = answers[function][name]
        assert answer["expected"] == answer["status"] == form["status"], where
        assert ["x-recorded", str(number)] in answer["headers"], where
        if form["status"] != 204:
            assert json.loads(answer["body"]) == {"answered": form["status"]}, where
        assert answer["isBase64Encoded"] is False, where
    table = result.stderr.splitlines()
    assert table[0].split() == ["function", "case", "expected", "got"]
    assert [line.split() for line in table[1:-1]] == [
        [function, name, str(form["status"]), str(form["status"])] for function, name, form in forms
    ]
    assert table[-1] == f"{len(forms)} cases, {len(forms)} as expected"


def test_what_send_py_sends_gives_the_committed_event_but_the_connection() -> None:
    """The property serve's test checks, here against a recorder at 127.0.0.1."""
    forms = all_forms()
    recorder = Recorder(lambda it: 200)
    try:
        send_py(recorder.url())
    finally:
        recorder.stop()
    cases = {function: generate.CASES[function]() for function in FUNCTIONS}
    for (function, name, _), arrived in zip(forms, recorder.arrived, strict=True):
        form = generate.Form(
            arrived.method,
            arrived.target,
            tuple(arrived.headers),
            arrived.body.decode() if arrived.body else None,
        )
        case = dataclasses.replace(cases[function][name], form=form, peer="127.0.0.1")
        event = generate.event_of(function, name, case)
        committed = json.loads((EVENTS / function / f"{name}.json").read_text())
        assert event != committed, "the connection differs"
        assert without_connection(event) == without_connection(committed), f"{function}/{name}"


def test_send_py_exits_1_naming_each_case_that_got_another_status() -> None:
    recorder = Recorder(lambda it: 200)
    try:
        result = send_py(recorder.url(), "--function", "cors")
    finally:
        recorder.stop()
    assert result.returncode == 1, result.stderr
    assert [arrived.method for arrived in recorder.arrived] == ["OPTIONS"] * 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[1].split() == ["cors", "preflight_allowed", "204", "200"]
    assert lines[-1] == (
        "3 cases, 0 as expected; not as expected: cors/preflight_allowed,"
        " cors/preflight_foreign_origin, cors/preflight_no_origin"
    )


def test_send_py_without_an_api_fails_and_with_bad_usage_exits_2() -> None:
    recorder = Recorder(lambda it: 200)
    url = recorder.url()
    recorder.stop()  # nothing listens there now
    result = send_py(url, "--function", "auth", "--json")
    assert result.returncode == 1
    answers = json.loads(result.stdout)["auth"]
    assert {answer["status"] for answer in answers.values()} == {None}
    assert "no answer: ConnectionRefusedError" in result.stderr

    unknown = send_py(url, "--function", "nope")
    assert unknown.returncode == 2
    assert "--function nope: no nope/requests.json" in unknown.stderr
    assert send_py("ftp://127.0.0.1:1").returncode == 2


def test_events_are_what_generate_py_writes() -> None:
    result = subprocess.run(
        [sys.executable, "-B", str(EVENTS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_fakes_print_one_line_of_loopback_settings_and_stop_at_eof(world: World) -> None:
    assert set(world.env) == set(FUNCTIONS)
    for name, env in world.env.items():
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:"), name
        assert env["NO_PROXY"] == "127.0.0.1,localhost", name
        # The invoker sets credentials and region itself.
        assert not {key for key in env if key.startswith("AWS_")} - {"AWS_ENDPOINT_URL"}, name
        for key, value in env.items():
            if "://" in value and key not in ("TWILIO_WEBHOOK_URL", "COGNITO_REDIRECT_URI"):
                assert value.startswith(("http://127.0.0.1:", "http://localhost:")), (name, key)
    assert world.fakes_stdout_after_env == b""
    assert world.fakes_returncode == 0, world.fakes_log


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_events_get_their_expected_outcome(world: World, function: str) -> None:
    run = world.runs[function]
    assert run.returncode == 0, run.stderr
    outcomes = json.loads(run.stdout.splitlines()[-1])
    assert outcomes == expectations(function), run.stderr[-5000:]
