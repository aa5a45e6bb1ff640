#!/usr/bin/env bash
# The tool at an earlier commit against this checkout, side by side in one
# run: each scenario is two hyperfine invocations timing both (one in each
# order), on two copies of the example application that differ only in
# the tool's sources.
#
#   bash bench/before_after.sh REF      # e.g. a commit before a change: what did it cost?
#
#   a. no-op:    xtask build --builder host            after one untimed full build
#   b. one edit: the same after appending a comment to lambdas/users/users_handler.py
#   c. cold:     the same with everything under target/lambda removed but
#                uv's cache (target/lambda/uv) and the tools the first build
#                bootstrapped (target/lambda/tools: uv, where it was not on
#                PATH), and dist/ removed
#
# Environment:
#   BENCH_RUNS=N   timed runs per command, scenario and order (default 5; one warm-up run before them)
#
# The copies are target/bench/before-after/{before,after}: `before` is
# `git archive REF`, `after` the tracked files of this checkout as they are
# now (uncommitted changes included); each compiles its own tool
# (`cargo build -p xtask`, untimed) and builds the example once (untimed,
# PyPI needed for that first build). Writes only under target/bench/:
# hyperfine JSON (before-after-*.json) and a table (before-after.md).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

if [[ $# -ne 1 ]]; then
    echo "usage: bash bench/before_after.sh REF   (the commit to compare this checkout with)" >&2
    exit 2
fi
ref="$1"
if ! before_commit="$(git rev-parse --verify --quiet "$ref^{commit}")"; then
    echo "$ref is not a commit of this repository (try a hash from git log)" >&2
    exit 2
fi
runs="${BENCH_RUNS:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
for tool in hyperfine python3 cargo git tar; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found on PATH (hyperfine: apt-get install -y hyperfine)" >&2
        exit 1
    fi
done
unset UV_CACHE_DIR

bench_dir="$repo_root/target/bench"
work="$bench_dir/before-after"
results_md="$bench_dir/before-after.md"
rm -rf "$work"
rm -f "$bench_dir"/before-after-*.json "$results_md"
mkdir -p "$work/before" "$work/after" "$work/logs"

echo "+ git archive $before_commit | tar -x -C $work/before"
git archive "$before_commit" | tar -x -C "$work/before"
echo "+ git ls-files -z | tar --null -T - -c | tar -x -C $work/after"
git ls-files -z | tar --null -T - -c | tar -x -C "$work/after"

for side in before after; do
    echo "+ (cd $work/$side && cargo build -p xtask && target/debug/xtask build --builder host)   # not timed"
    if ! (cd "$work/$side" && cargo build -p xtask && target/debug/xtask build --builder host) \
        >"$work/logs/$side-first-build.log" 2>&1; then
        echo "the first build of $side failed; last lines of $work/logs/$side-first-build.log:" >&2
        tail -n 15 "$work/logs/$side-first-build.log" | sed 's/^/    /' >&2
        exit 1
    fi
done

build="target/debug/xtask build --builder host"
edited="lambdas/users/users_handler.py"
for side in before after; do
    cp -p "$work/$side/$edited" "$work/$side.handler.orig"
done
# The edit: the original plus one comment with a fresh counter, so each run
# sees exactly one changed handler with new content.
edit() { # SIDE
    local dir="$work/$1"
    printf 'n=$(( $(cat %q 2>/dev/null || echo 0) + 1 )) && echo "$n" > %q && cp %q %q && echo "# bench edit $n" >> %q' \
        "$work/$1.counter" "$work/$1.counter" "$work/$1.handler.orig" "$dir/$edited" "$dir/$edited"
}
cold() { # SIDE
    printf 'find %q -mindepth 1 -maxdepth 1 ! -name uv ! -name tools -exec rm -rf {} + && rm -rf %q' \
        "$work/$1/target/lambda" "$work/$1/dist"
}

# scenario NAME [PREPARE_BEFORE PREPARE_AFTER]: two hyperfine runs, the
# second in the other order, so that neither side always goes first.
scenario() {
    local name="$1"; shift
    local order first second
    for order in 1 2; do
        local args=(hyperfine --warmup 1 --runs "$runs" --export-json "$bench_dir/before-after-$name-$order.json")
        if [[ "$order" == 1 ]]; then first=before; second=after; else first=after; second=before; fi
        if [[ $# -eq 2 ]]; then
            local prep_before="$1" prep_after="$2"
            if [[ "$first" == before ]]; then
                args+=(--prepare "$prep_before" --prepare "$prep_after")
            else
                args+=(--prepare "$prep_after" --prepare "$prep_before")
            fi
        fi
        args+=(-n "$first" "cd $work/$first && $build" -n "$second" "cd $work/$second && $build")
        echo "+ ${args[*]}"
        "${args[@]}" 2>&1 | tee -a "$work/logs/hyperfine.log"
    done
}

machine="$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, $(hyperfine --version)"
echo "== $machine; before = $before_commit"
scenario noop
scenario edit "$(edit before)" "$(edit after)"
scenario cold "$(cold before)" "$(cold after)"

python3 - "$bench_dir" "$runs" "$machine" "$before_commit" >"$results_md" <<'PY'
import json, os, statistics, sys

bench_dir, runs, machine, commit = sys.argv[1:]
print(f"{machine}; before = {commit[:12]}; medians of {2 * int(runs)} (two hyperfine runs of {runs}, one in each order)\n")
print("| scenario | before s | after s | after / before |")
print("|---|---|---|---|")
for name, label in [("noop", "no-op build"), ("edit", "one handler edited"), ("cold", "cold, uv cache warm")]:
    times = {"before": [], "after": []}
    for order in (1, 2):
        with open(os.path.join(bench_dir, f"before-after-{name}-{order}.json")) as f:
            for result in json.load(f)["results"]:
                times[result["command"]] += result["times"]
    before, after = statistics.median(times["before"]), statistics.median(times["after"])
    print(f"| {label} | {before:.3f} | {after:.3f} | {after / before:.2f} |")
PY
cat "$results_md"
echo "hyperfine JSON: $bench_dir/before-after-*.json; table: $results_md; logs: $work/logs"
