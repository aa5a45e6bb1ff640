"""The sample events of lambdas/events get their expected outcomes against fakes.py.

fakes.py runs as `cargo xtask invoke` runs it: a subprocess printing one line
of environment per function, stopped by closing its stdin. Each function then
handles all its events, in a row as a warm container would, in a fresh
interpreter that sees only that environment, fake AWS credentials and the
paths Lambda would give it (its folder, and lambdas/ for the ``shared``
layer). The handlers reach the fakes over 127.0.0.1 only.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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


def event_files(function: str) -> list[Path]:
    return sorted(p for p in (EVENTS / function).glob("*.json") if p.name != "expect.json")


def expectations(function: str) -> dict[str, Any]:
    return json.loads((EVENTS / function / "expect.json").read_text())


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
    """Each route Cargo.toml gives a function gets an event the function answers 2xx or 3xx."""
    routes = set()
    for function, table in FUNCTIONS.items():
        for route in table.get("routes", []):
            key = route if isinstance(route, str) else route["key"]
            if key != "$default":
                method, path = key.split(" ", 1)
                routes.add((method, path, function))
    assert routes, "no routes in Cargo.toml"
    covered = set()
    for function in FUNCTIONS:
        expected = expectations(function)
        for path in event_files(function):
            event = json.loads(path.read_text())
            outcome = expected[path.stem]
            if outcome == "Allow" or (type(outcome) is int and 200 <= outcome < 400):
                covered.add((event["httpMethod"], event["resource"], function))
    assert set(routes) <= covered
    assert any(function == "authorizer" for *_, function in covered)


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
