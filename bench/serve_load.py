"""Latency of `cargo xtask serve` against the same handlers called directly.

    python bench/serve_load.py load URL CASE --requests N --concurrency C
    python bench/serve_load.py first URL CASE
    python bench/serve_load.py direct CASE --requests N
    python bench/serve_load.py reload URL --saves N

CASE is `cors` (the preflight of lambdas/events/cors/requests.json's
`preflight_allowed`) or `users` (`GET /users/{user_id}` of users' `get`,
through the authorizer). `load` sends the case's HTTP form N times over C
keep-alive connections (one thread each) and prints the median and p99 of
the round trips, in ms, as JSON. `first` times one request (a cold init
when it is the function's first). `direct` calls the same handlers in this
process with the committed events (the authorizer's `allow_bearer`, then
users' `get`; or cors' `preflight_allowed`), with the fakes' variables (it
starts lambdas/events/fakes.py itself), and prints the same figures.
`reload` edits lambdas/cors/cors_handler.py N times (a response header
`x-serve-version`) while polling the API every 5 ms, prints the time from
each save to the first answer carrying it, and restores the file.

Run it with the Python of lambdas/requirements-dev.txt (the handlers'
dependencies): target/lambda/ci-venv/bin/python, made by `cargo xtask`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "lambdas" / "events"
CASES = {"cors": ("cors", "preflight_allowed"), "users": ("users", "get")}


def form(case: str) -> dict[str, Any]:
    function, name = CASES[case]
    cases: dict[str, Any] = json.loads((EVENTS / function / "requests.json").read_text())
    return dict(cases[name])


def send(conn: http.client.HTTPConnection, request: dict[str, Any]) -> tuple[int, dict[str, str]]:
    conn.putrequest(request["method"], request["target"], skip_host=True, skip_accept_encoding=True)
    for name, value in request["headers"]:
        conn.putheader(name, value)
    conn.endheaders((request["body"] or "").encode() or None)
    response = conn.getresponse()
    response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}


def figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "requests": len(ordered),
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


def load(url: str, case: str, requests: int, concurrency: int) -> dict[str, float]:
    parts = urlsplit(url)
    request = form(case)
    expected = request["status"]
    per_thread = [
        requests // concurrency + (i < requests % concurrency) for i in range(concurrency)
    ]
    samples: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        mine = []
        for _ in range(count):
            started = time.perf_counter()
            status, _ = send(conn, request)
            mine.append((time.perf_counter() - started) * 1000)
            if status != expected:
                failures.append(f"status {status}, expected {expected}")
        with lock:
            samples.extend(mine)

    send(http.client.HTTPConnection(parts.hostname or "", parts.port), request)  # warm
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        sys.exit(f"{len(failures)} request(s) failed: {failures[0]}")
    return {
        **figures(samples),
        "concurrency": concurrency,
        "per_second": round(requests / elapsed, 1),
    }


def first(url: str, case: str) -> dict[str, float]:
    """One request to a server that has answered none: the function's cold init included."""
    parts = urlsplit(url)
    request = form(case)
    started = time.perf_counter()
    status, _ = send(
        http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60), request
    )
    if status != request["status"]:
        sys.exit(f"first {case}: status {status}, expected {request['status']}")
    return {"first_ms": round((time.perf_counter() - started) * 1000, 1)}


def fakes_env() -> tuple[subprocess.Popen[str], dict[str, dict[str, str]]]:
    fakes = subprocess.Popen(
        [sys.executable, str(EVENTS / "fakes.py")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fakes.stdout is not None
    env: dict[str, dict[str, str]] = json.loads(fakes.stdout.readline())["env"]
    return fakes, env


# What Lambda sets (as `serve` does, from xtask/src/lambda/runtime_env.rs):
# a region and credentials for the SDK, here pointing at the fakes.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench-local-fake-key-id",
    "AWS_SECRET_ACCESS_KEY": "bench-fake-secret-key",
    "TZ": ":UTC",
}


def handler(function: str, env: dict[str, str]) -> Any:
    """The function's handler, imported as Lambda would: its folder and shared code on sys.path."""
    os.environ.update(LAMBDA_ENV)
    os.environ.update(env)
    source = {"authorizer": ("jwt_authorizer", "lambdas/authorizer")}.get(
        function, (f"{function}_handler", f"lambdas/{function}")
    )
    sys.path[:0] = [str(ROOT / source[1]), str(ROOT / "lambdas")]
    module = __import__(source[0])
    return module.lambda_handler


class Context:
    function_name = "bench"
    aws_request_id = "bench-request"
    memory_limit_in_mb = 256

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def direct(case: str, requests: int) -> dict[str, float]:
    fakes, env = fakes_env()
    try:
        calls = []
        if case == "users":
            calls.append((handler("authorizer", env["authorizer"]), "authorizer", "allow_bearer"))
        function, name = CASES[case]
        calls.append((handler(function, env.get(function, {})), function, name))
        events = [(h, json.loads((EVENTS / f / f"{n}.json").read_text())) for h, f, n in calls]
        expected = form(case)["status"]
        samples = []
        for _ in range(requests + 1):
            started = time.perf_counter()
            for call, event in events:
                answer = call(json.loads(json.dumps(event)), Context())
            samples.append((time.perf_counter() - started) * 1000)
            if answer["statusCode"] != expected:
                sys.exit(f"direct {case}: status {answer['statusCode']}, expected {expected}")
        return figures(samples[1:])
    finally:
        assert fakes.stdin is not None
        fakes.stdin.close()
        fakes.wait()


def reload(url: str, saves: int) -> dict[str, Any]:
    parts = urlsplit(url)
    request = form("cors")
    path = ROOT / "lambdas" / "cors" / "cors_handler.py"
    original = path.read_text()
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    seconds = []
    try:
        for version in range(1, saves + 1):
            # The handler wrapped: its answer gains a header naming the version.
            patched = original + (
                "\n\n_answer = lambda_handler\n\n\n"
                "def lambda_handler(event, context):  # type: ignore[no-redef]\n"
                "    response = _answer(event, context)\n"
                f"    response.setdefault('headers', {{}})['x-serve-version'] = '{version}'\n"
                "    return response\n"
            )
            saved = time.perf_counter()
            path.write_text(patched)
            while True:
                status, headers = send(conn, request)
                if status != request["status"]:
                    sys.exit(f"status {status} during the reload")
                if headers.get("x-serve-version") == str(version):
                    break
                if time.perf_counter() - saved > 60:
                    sys.exit("the new code did not answer within 60 s")
                time.sleep(0.005)
            seconds.append(round(time.perf_counter() - saved, 3))
            time.sleep(0.5)
    finally:
        path.write_text(original)
    return {"saves": seconds, "median_s": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("load")
    p.add_argument("url")
    p.add_argument("case", choices=CASES)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1)
    p = sub.add_parser("first")
    p.add_argument("url")
    p.add_argument("case", choices=CASES)
    p = sub.add_parser("direct")
    p.add_argument("case", choices=CASES)
    p.add_argument("--requests", type=int, default=1000)
    p = sub.add_parser("reload")
    p.add_argument("url")
    p.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()
    if args.what == "load":
        result: Any = load(args.url, args.case, args.requests, args.concurrency)
    elif args.what == "first":
        result = first(args.url, args.case)
    elif args.what == "direct":
        result = direct(args.case, args.requests)
    else:
        result = reload(args.url, args.saves)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
