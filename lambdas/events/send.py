"""Sends the sample cases of lambdas/events to a running API, as their clients would.

    python lambdas/events/send.py BASE_URL [--function F]... [--json]

e.g. ``python lambdas/events/send.py http://127.0.0.1:PORT`` against
``cargo xtask serve --fakes`` listening on PORT: every case of
<function>/requests.json is sent exactly as written there (its method and
target, its headers in order, Host included, and no other, its body), and
the status the API answers is compared with the case's. The cases go out one
at a time, functions sorted by name and each function's cases by name, the
order of ``cargo xtask invoke --all``: a fresh fake world evolves the same
way under both (the first delete of a seeded user is 204, a second would be
404).

Prints a table (function, case, expected, got) on stderr; with ``--json``,
also each answer on stdout: ``{"<function>": {"<case>": {"expected", "status",
"headers": [[name, value], ...] as received, "body", "isBase64Encoded"}}}``
(the body base64-encoded when it is not UTF-8; status null and "error" when
no answer came). Exit 0 when every status is the expected one, 1 when one is
not (or no answer came), 2 for bad usage.

Standard library only: any Python 3.11 runs it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REQUESTS_FILE = "requests.json"
# Longer than the API's own limit (30 s), and a first request may start a function cold.
TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Base:
    """Where the API listens: scheme, host, port and a path prefix (a stage's, if any)."""

    scheme: str
    host: str
    port: int | None
    prefix: str


@dataclass
class Result:
    function: str
    case: str
    expected: int
    status: int | None = None
    headers: list[tuple[str, str]] | None = None
    body: bytes = b""
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.status is None:
            return {"expected": self.expected, "status": None, "error": self.error}
        try:
            body, encoded = self.body.decode(), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(self.body).decode(), True
        return {
            "expected": self.expected,
            "status": self.status,
            "headers": [list(header) for header in self.headers or []],
            "body": body,
            "isBase64Encoded": encoded,
        }


def parse_base(url: str) -> Base:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(f"BASE_URL `{url}` is not http(s)://HOST[:PORT][/PREFIX]")
    return Base(parts.scheme, parts.hostname, parts.port, parts.path.rstrip("/"))


def load_cases(functions: list[str] | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, case, form) of every requests.json, or of ``functions``, in sending order."""
    known = sorted(path.parent.name for path in HERE.glob(f"*/{REQUESTS_FILE}"))
    unknown = sorted(set(functions or []) - set(known))
    if unknown:
        raise ValueError(
            f"--function {unknown[0]}: no {unknown[0]}/{REQUESTS_FILE} in {HERE.name}/"
            f" (functions: {', '.join(known)})"
        )
    cases = []
    for function in known:
        if functions and function not in functions:
            continue
        forms = json.loads((HERE / function / REQUESTS_FILE).read_text())
        cases += [(function, name, forms[name]) for name in sorted(forms)]
    return cases


def send(base: Base, form: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Sends the form as it is written, no header added; the status, headers and body."""
    connection: http.client.HTTPConnection
    if base.scheme == "https":
        connection = http.client.HTTPSConnection(base.host, base.port, timeout=TIMEOUT_SECONDS)
    else:
        connection = http.client.HTTPConnection(base.host, base.port, timeout=TIMEOUT_SECONDS)
    try:
        connection.putrequest(
            form["method"],
            base.prefix + form["target"],
            skip_host=True,
            skip_accept_encoding=True,
        )
        for name, value in form["headers"]:
            connection.putheader(name, value)
        body = form["body"]
        connection.endheaders(None if body is None else body.encode())
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def run(base: Base, cases: list[tuple[str, str, dict[str, Any]]]) -> list[Result]:
    results = []
    for function, case, form in cases:
        result = Result(function, case, form["status"])
        try:
            result.status, result.headers, result.body = send(base, form)
        except (OSError, http.client.HTTPException) as error:
            result.error = f"{type(error).__name__}: {error}"
        results.append(result)
    return results


def table(results: list[Result]) -> str:
    """One line per case, and a last line naming the cases that got another status."""
    rows = [("function", "case", "expected", "got")]
    for result in results:
        got = str(result.status) if result.status is not None else f"no answer: {result.error}"
        rows.append((result.function, result.case, str(result.expected), got))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    wrong = [f"{r.function}/{r.case}" for r in results if r.status != r.expected]
    summary = f"{len(results)} cases, {len(results) - len(wrong)} as expected"
    if wrong:
        summary += f"; not as expected: {', '.join(wrong)}"
    return "\n".join([*lines, summary])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="send.py", description="Send the sample cases of lambdas/events to a running API."
    )
    parser.add_argument("base_url", metavar="BASE_URL", help="e.g. http://127.0.0.1:PORT")
    parser.add_argument(
        "--function",
        action="append",
        metavar="F",
        help="only this function's cases (repeatable)",
    )
    parser.add_argument(
        "--json", action="store_true", help="also print each answer as JSON on stdout"
    )
    args = parser.parse_args(argv)
    try:
        base = parse_base(args.base_url)
        cases = load_cases(args.function)
    except ValueError as error:
        print(f"send.py: {error}", file=sys.stderr)
        return 2
    results = run(base, cases)
    print(table(results), file=sys.stderr)
    if args.json:
        answers: dict[str, dict[str, Any]] = {}
        for result in results:
            answers.setdefault(result.function, {})[result.case] = result.as_json()
        print(json.dumps(answers, indent=2))
    return 0 if all(result.status == result.expected for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
