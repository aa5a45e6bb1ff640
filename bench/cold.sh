#!/usr/bin/env bash
# A cold build of the example application, side by side in one run
# (hyperfine, medians), against `sam build --parallel` on the same five
# functions and three profiles:
#
#   sam:          sam build --parallel, its build folder (.aws-sam) removed before each run, pip's cache
#                 warm (one untimed build first), on a copy under target/bench/cold/sam-app/
#   xtask-empty:  cargo xtask build --builder host, everything under target/lambda removed but uv's
#                 cache and the bootstrapped uv (target/lambda/uv, target/lambda/tools), dist/ removed,
#                 and the finished-distribution cache (XTASK_CACHE_DIR) emptied: nothing finished yet
#   xtask-finished-empty: the same, with the finished distributions, proofs, layers and the layers'
#                 laid-out trees (finished/, proven/, layers/, laid-out/) removed from that cache: the
#                 runtime's boto3 and client (its runtime/) stay installed
#   xtask-new-profile: the same, with only the layers and their laid-out trees (layers/, laid-out/)
#                 removed from that cache: every profile is new to it, but its wheels were finished
#                 and its layers proven before
#   xtask-warm:   the same, with that cache kept whole: a fresh clone on a used machine
#
#   bash bench/setup.sh && bash bench/cold.sh
#
# Environment:
#   BENCH_RUNS=N     timed runs per command (default 5, after one warm-up run each)
#   BENCH_VENV=DIR   the venv made by bench/setup.sh (default target/bench-venv)
#
# CPU use is hyperfine's user + system time over its wall time, per command
# (the mean of each, as hyperfine reports them). The finished-distribution
# cache of this script is its own (target/bench/cold/finished-cache), so the
# user's is never emptied. Writes only under target/ (JSON: target/bench/cold-*.json,
# the table: target/bench/cold-results.md) and the tool's own dist/.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

runs="${BENCH_RUNS:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
venv="${BENCH_VENV:-$repo_root/target/bench-venv}"
sam="$venv/bin/sam"
for tool in hyperfine python3 cargo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found on PATH (hyperfine: apt-get install -y hyperfine)" >&2
        exit 1
    fi
done
if [[ ! -x "$sam" ]]; then
    echo "sam not found at $sam: run 'bash bench/setup.sh' first" >&2
    exit 1
fi

export SAM_CLI_TELEMETRY=0
unset UV_CACHE_DIR
work="$repo_root/target/bench/cold"
rm -rf "$work"
mkdir -p "$work"
export XTASK_CACHE_DIR="$work/finished-cache"

# SAM's copy, laid out as bench/graph.sh lays it out.
sam_root="$work/sam-app"
mkdir -p "$sam_root/bench/sam" "$sam_root/layers/shared"
cp bench/sam/app-template.yaml "$sam_root/bench/sam/app-template.yaml"
for profile in core jwt sms; do
    mkdir -p "$sam_root/layers/$profile"
    cp "layers/$profile/requirements.txt" "$sam_root/layers/$profile/requirements.txt"
done
cp -R lambdas "$sam_root/lambdas"
cp -R lambdas/shared "$sam_root/layers/shared/shared"

# Untimed: the binary, uv's cache, pip's cache and the finished cache filled once.
cargo build -p xtask >"$work/prebuild.log" 2>&1
cargo xtask build --builder host >"$work/first-build.log" 2>&1
(cd "$sam_root/bench/sam" && "$sam" build --parallel --template-file app-template.yaml >"$work/sam-first.log" 2>&1)

wipe="find target/lambda -mindepth 1 -maxdepth 1 ! -name uv ! -name tools -exec rm -rf {} + ; rm -rf dist"
# Laid-out trees are read-only: made writable first, for a user who is not root.
empty="chmod -R u+w $XTASK_CACHE_DIR 2>/dev/null; rm -rf $XTASK_CACHE_DIR"
finished_only="chmod -R u+w $XTASK_CACHE_DIR/laid-out 2>/dev/null; rm -rf $XTASK_CACHE_DIR/finished $XTASK_CACHE_DIR/proven $XTASK_CACHE_DIR/layers $XTASK_CACHE_DIR/laid-out"
layers_only="chmod -R u+w $XTASK_CACHE_DIR/laid-out 2>/dev/null; rm -rf $XTASK_CACHE_DIR/layers $XTASK_CACHE_DIR/laid-out"
echo "== cold: sam build --parallel, xtask with the finished cache empty, xtask with it warm ($runs runs each)"
hyperfine --warmup 1 --runs "$runs" --export-json "$repo_root/target/bench/cold-results.json" \
    --command-name sam --prepare "rm -rf $sam_root/bench/sam/.aws-sam" \
    "cd $sam_root/bench/sam && $sam build --parallel --template-file app-template.yaml" \
    --command-name xtask-empty --prepare "$wipe && $empty" \
    "cargo xtask build --builder host" \
    --command-name xtask-finished-empty --prepare "$wipe && $finished_only" \
    "cargo xtask build --builder host" \
    --command-name xtask-new-profile --prepare "$wipe && $layers_only" \
    "cargo xtask build --builder host" \
    --command-name xtask-warm --prepare "$wipe" \
    "cargo xtask build --builder host"

python3 - "$repo_root/target/bench/cold-results.json" "$runs" >"$repo_root/target/bench/cold-results.md" <<'PY'
import json, statistics, sys
path, runs = sys.argv[1:]
results = {r["command"]: r for r in json.load(open(path))["results"]}
names = {r["command"]: r for r in results.values()}
def row(r):
    median = statistics.median(r["times"])
    cpu = (r["user"] + r["system"]) / r["mean"]
    return median, min(r["times"]), max(r["times"]), cpu
print(f"Cold builds, {runs} runs each (hyperfine, medians in seconds):")
print()
print("| command | median | range | CPU (cores) | ratio to sam |")
print("|---|---|---|---|---|")
sam = statistics.median(results["sam"]["times"])
for name in ["sam", "xtask-empty", "xtask-finished-empty", "xtask-new-profile", "xtask-warm"]:
    median, low, high, cpu = row(results[name])
    print(f"| {name} | {median:.3f} | {low:.3f}–{high:.3f} | {cpu:.2f} | {median / sam:.3f} |")
PY
cat "$repo_root/target/bench/cold-results.md"
