#!/usr/bin/env bash
# Benchmark of `cargo xtask invoke` on the example application, with
# hyperfine, in one run:
#
#   a. first:   cargo xtask invoke --all          with the runtime's boto3 and awslambdaric
#                                                 (runtime/ of the script's own XTASK_CACHE_DIR,
#                                                 target/bench/invoke-cache) and the fakes' virtualenv
#                                                 (target/lambda/ci-venv) removed before each run;
#                                                 uv's cache stays warm
#   b. later:   cargo xtask invoke --all          everything installed
#   c. one:     cargo xtask invoke cors --event lambdas/events/cors/preflight_allowed.json
#   d. floor:   cargo xtask --help                cargo's own start-up
#   e. in the test image (when docker has it): b and c with --runner container
#
#   bash bench/invoke.sh
#
# Environment:
#   BENCH_RUNS=N     timed runs per scenario (default 5; one warm-up run before b–e)
#   BENCH_IMAGE=IMG  the image of e (default xtask-test-python:bookworm, built by cargo xtask ci)
#
# Needs hyperfine, cargo, python3 and PyPI for the first installs. Writes
# only under target/ (hyperfine JSON: target/bench/invoke-*.json; the
# markdown table: target/bench/invoke-results.md) and the tool's own dist/.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
runs="${BENCH_RUNS:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
image="${BENCH_IMAGE:-xtask-test-python:bookworm}"
command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install -y hyperfine)" >&2; exit 2; }
out="$repo_root/target/bench"
mkdir -p "$out"
results="$out/invoke-results.md"

# The functions built on the host, once, untimed; the graph is a no-op after that.
# The runtime's packages live in the cache every repository shares: this
# script's own, so that the user's is never emptied.
export XTASK_CACHE_DIR="$repo_root/target/bench/invoke-cache"
cargo build -q -p xtask
cargo xtask build --builder host --quiet

common=(--builder host --quiet)
one=(cors --event lambdas/events/cors/preflight_allowed.json --env ALLOWED_ORIGINS=http://localhost:3000)
: > "$results"

hyperfine --runs "$runs" --export-json "$out/invoke-first.json" --export-markdown "$out/invoke-first.md" \
    --prepare "rm -rf $XTASK_CACHE_DIR/runtime target/lambda/runtime target/lambda/ci-venv" \
    -n 'invoke --all (first)' "cargo xtask invoke --all ${common[*]}"
cat "$out/invoke-first.md" >> "$results"

hyperfine --runs "$runs" --warmup 1 --export-json "$out/invoke-later.json" --export-markdown "$out/invoke-later.md" \
    -n 'cargo xtask --help' 'cargo xtask --help' \
    -n 'invoke --all' "cargo xtask invoke --all ${common[*]}" \
    -n 'invoke cors' "cargo xtask invoke ${one[*]} ${common[*]}"
cat "$out/invoke-later.md" >> "$results"

if docker image inspect "$image" >/dev/null 2>&1; then
    container=(--runner container --image "$image")
    hyperfine --runs "$runs" --warmup 1 --export-json "$out/invoke-container.json" \
        --export-markdown "$out/invoke-container.md" \
        -n 'invoke --all (container)' "cargo xtask invoke --all ${common[*]} ${container[*]}" \
        -n 'invoke cors (container)' "cargo xtask invoke ${one[*]} ${common[*]} ${container[*]}"
    cat "$out/invoke-container.md" >> "$results"
else
    echo "bench: SKIPPED the container runs: docker has no image $image (cargo xtask ci builds it)" | tee -a "$results" >&2
fi
echo "bench: results in ${results#"$repo_root"/}" >&2
