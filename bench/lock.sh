#!/usr/bin/env bash
# Benchmark of locks (issue 12), with hyperfine, in one run, on copies of the
# example application under target/bench/lock/ (the committed locks are
# never rewritten):
#
#   a. lock:            cargo xtask lock              the three profiles, pins kept (uv's cache warm)
#   b. lock --upgrade:  cargo xtask lock --upgrade    every distribution resolved anew
#   c. cold, locked:    cargo xtask build-layers      from the locks, the layer store emptied before each run
#   d. cold, resolved:  cargo xtask build-layers      the same copy without its locks: resolve and install
#
#   bash bench/lock.sh
#
# Environment: BENCH_RUNS=N (default 5; one warm-up run before each).
# Needs hyperfine, cargo, python3 and PyPI. Writes only under target/.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
runs="${BENCH_RUNS:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install -y hyperfine)" >&2; exit 2; }
cargo build -q -p xtask
xtask="$repo_root/target/debug/xtask"
out="$repo_root/target/bench"
work="$out/lock"
rm -rf "$work"
mkdir -p "$work/locked" "$work/resolved"
for copy in locked resolved; do
    cp -R Cargo.toml Cargo.lock .cargo xtask layers lambdas "$work/$copy/"
done
rm -f "$work"/resolved/layers/*/*.lock
# Both copies share the repository's uv cache (warm), nothing else.
export UV_CACHE_DIR="$repo_root/target/lambda/uv"
export CARGO_TARGET_DIR="$repo_root/target/bench/lock/target"

(cd "$work/locked" && hyperfine --runs "$runs" --warmup 1 --export-json "$out/lock-lock.json" \
    -n 'lock' "$xtask lock --quiet" \
    -n 'lock --upgrade' "$xtask lock --upgrade --quiet")
(cd "$work/locked" && hyperfine --runs "$runs" --warmup 1 --export-json "$out/lock-cold-locked.json" \
    --prepare "rm -rf $CARGO_TARGET_DIR/lambda/store/profile" \
    -n 'build-layers cold, from the locks' "$xtask build-layers --builder host --quiet")
(cd "$work/resolved" && hyperfine --runs "$runs" --warmup 1 --export-json "$out/lock-cold-resolved.json" \
    --prepare "rm -rf $CARGO_TARGET_DIR/lambda/store/profile" \
    -n 'build-layers cold, resolving' "$xtask build-layers --builder host --quiet")
python3 - "$out" <<'PY'
import json, sys, glob
for path in sorted(glob.glob(sys.argv[1] + "/lock-*.json")):
    for result in json.load(open(path))["results"]:
        print("%-36s median %.3f s  min %.3f  max %.3f" % (result["command"], result["median"], result["min"], result["max"]))
PY
