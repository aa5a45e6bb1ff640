#!/usr/bin/env bash
# Benchmark of `cargo xtask serve` on the example application, side by side
# in one run (issue 24):
#
#   a. cold:    the first request to cors and to GET /users/{user_id} (through the
#               authorizer) after serve printed its URL: each function's init included
#   b. warm:    1,000 requests of each at concurrency 1 and 8 over keep-alive
#               connections: median and p99 of the round trips
#   c. direct:  the same handlers called in one Python process with the same
#               events (authorizer then users; cors), against the same fakes
#   d. reload:  serve --watch; the cors handler saved BENCH_SAVES times while a
#               client polls every 5 ms: from the save to the first new answer
#
#   bash bench/serve.sh
#
# Environment: BENCH_REQUESTS (default 1000), BENCH_SAVES (default 5),
# BENCH_PORT (default 8765). Needs cargo, python3 and, the first time, PyPI
# (the fakes' virtualenv, the runtime's client). Writes target/bench/serve-*.json
# and leaves lambdas/cors/cors_handler.py as it found it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
requests="${BENCH_REQUESTS:-1000}"
saves="${BENCH_SAVES:-5}"
port="${BENCH_PORT:-8765}"
out="$repo_root/target/bench"
mkdir -p "$out"
url="http://127.0.0.1:$port"

cargo build -q -p xtask
cargo xtask build --builder host --quiet
python="$repo_root/target/lambda/ci-venv/bin/python"

serve_pid=""
stop() { [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }
trap stop EXIT
start() {
    target/debug/xtask serve --fakes --builder host --runner host --quiet --port "$port" "$@" \
        > "$out/serve.out" 2> "$out/serve.log" &
    serve_pid=$!
    for _ in $(seq 1 300); do
        grep -q '^http' "$out/serve.out" 2>/dev/null && return 0
        kill -0 "$serve_pid" 2>/dev/null || { cat "$out/serve.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "serve did not start" >&2; exit 1
}

start
{
    echo "cold cors $("$python" bench/serve_load.py first "$url" cors)"
    echo "cold users $("$python" bench/serve_load.py first "$url" users)"
    for case in cors users; do
        for concurrency in 1 8; do
            echo "warm $case c$concurrency $("$python" bench/serve_load.py load "$url" "$case" \
                --requests "$requests" --concurrency "$concurrency")"
        done
        echo "direct $case $("$python" bench/serve_load.py direct "$case" --requests "$requests" 2>/dev/null)"
    done
} | tee "$out/serve-results.txt"
stop

start --watch
echo "reload $("$python" bench/serve_load.py reload "$url" --saves "$saves")" | tee -a "$out/serve-results.txt"
stop
