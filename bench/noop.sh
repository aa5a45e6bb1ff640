#!/usr/bin/env bash
# The no-op `build` of the example application by this checkout's xtask
# against another revision's, side by side in one hyperfine run: what a
# change costs every build that has nothing to do.
#
#   bash bench/noop.sh REV
#
# REV (a commit, tag or branch; default HEAD~1) is exported with `git
# archive` to target/bench/noop/base and its xtask built there (`cargo build
# -p xtask`, untimed, in its own target folder); this checkout's is built too.
# Each binary gets its own copy of the example application (Cargo.toml,
# Cargo.lock, .cargo, xtask, layers, lambdas), built once untimed (PyPI
# needed, uv's cache shared), then hyperfine times `xtask build --builder
# host --quiet` in each copy (all of one side's runs, then the other's), after BENCH_WARMUP warm-up runs.
# The binaries are run directly (cargo's start-up is not in the figures),
# each from its copy through the shell, whose own start hyperfine subtracts.
#
# Environment:
#   BENCH_RUNS=N     timed runs of each side (default 10)
#   BENCH_WARMUP=N   untimed runs first (default 2)
#
# Needs hyperfine (apt-get install -y hyperfine), git, cargo, python3.
# Writes only under target/bench/ (noop-results.md, noop.json, noop/).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
rev="${1:-HEAD~1}"
runs="${BENCH_RUNS:-10}"
warmup="${BENCH_WARMUP:-2}"
for value in "$runs" "$warmup"; do
    if ! [[ "$value" =~ ^[0-9]+$ ]]; then
        echo "BENCH_RUNS and BENCH_WARMUP must be whole numbers, got '$value'" >&2
        exit 2
    fi
done
for tool in hyperfine git cargo python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found on PATH (hyperfine: apt-get install -y hyperfine)" >&2
        exit 1
    fi
done
source bench/two-sides.sh
base_commit="$(commit_of "$rev")"

out="$repo_root/target/bench"
work="$out/noop"
logs="$work/logs"
rm -rf "$work"
mkdir -p "$logs"

build_two_sides "$base_commit" "$work" "$logs"
head_bin="$work/xtask-head"
base_bin="$work/xtask-base"

for side in base head; do
    echo "== the example application for $side, built once (PyPI; not timed)"
    copy_app "$work/app-$side"
    (cd "$work/app-$side" && unset CARGO_TARGET_DIR && quiet "$logs/setup.log" "$work/xtask-$side" build --builder host --quiet)
done

machine="$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo "== $machine"
hyperfine --warmup "$warmup" --runs "$runs" --export-json "$out/noop.json" \
    --command-name "base ${base_commit:0:12}" "cd $work/app-base && $base_bin build --builder host --quiet" \
    --command-name "head" "cd $work/app-head && $head_bin build --builder host --quiet" \
    | tee "$logs/hyperfine.txt"

python3 - "$out/noop.json" "$machine" >"$out/noop-results.md" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
print(f"{sys.argv[2]}; no-op `build --builder host --quiet` of the example, hyperfine, one side after the other\n")
print("| side | median s | min–max s |")
print("|---|---|---|")
for r in results:
    print(f"| {r['command']} | {r['median']:.3f} | {r['min']:.3f}–{r['max']:.3f} |")
base, head = (statistics.median(r["times"]) for r in results)
print(f"\nhead / base: {head / base:.2f}")
PY
echo
cat "$out/noop-results.md"
