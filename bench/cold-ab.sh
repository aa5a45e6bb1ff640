#!/usr/bin/env bash
# A cold build of the example application by this checkout's xtask against
# another revision's, interleaved: round after round, one build of each
# side, the order alternating. On a shared machine whose speed drifts
# within minutes (and whose file system makes each new file cost more the
# more files were deleted in the last 30 s), side-by-side hyperfine runs
# of one command after the other can differ by more than the change
# measured; rounds that interleave the two see the same machine.
#
#   bash bench/cold-ab.sh REV [warm|empty]
#
# REV (a commit, tag or branch; default HEAD~1) is exported with `git
# archive` to target/bench/cold-ab/base and its xtask built there (untimed,
# in its own target folder); this checkout's is built too. Each side gets
# its own copy of the example application (Cargo.toml, Cargo.lock, .cargo,
# xtask, layers, lambdas) and its own shared cache (XTASK_CACHE_DIR), both
# built once untimed (PyPI needed, uv's cache shared). Before each timed
# build, everything under the copy's target/lambda but uv's cache and the
# tools is removed, and dist/; with `empty` the side's shared cache is
# emptied too (nothing finished, proven, laid out or installed for the
# runtime), with `warm` (the default) it is kept: a fresh clone on a used
# machine. The binaries run directly (`xtask build --builder host --quiet`),
# timed with /usr/bin/time.
#
# Environment:
#   BENCH_RUNS=N     rounds (default 6)
#
# Needs git, cargo, python3 and /usr/bin/time. Writes only under
# target/bench/ (cold-ab-results.md, cold-ab/).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
rev="${1:-HEAD~1}"
mode="${2:-warm}"
runs="${BENCH_RUNS:-6}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
if [[ "$mode" != warm && "$mode" != empty ]]; then
    echo "the second argument is warm or empty, got '$mode'" >&2
    exit 2
fi
for tool in git cargo python3 /usr/bin/time; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found (/usr/bin/time: apt-get install -y time)" >&2
        exit 1
    fi
done
source bench/two-sides.sh
base_commit="$(commit_of "$rev")"

out="$repo_root/target/bench"
work="$out/cold-ab"
logs="$work/logs"
# Laid-out trees are read-only: made writable first, for a user who is not root.
chmod -R u+w "$work" 2>/dev/null || true
rm -rf "$work"
mkdir -p "$logs"

build_two_sides "$base_commit" "$work" "$logs"

for side in base head; do
    echo "== the example application for $side, built once (PyPI; not timed)"
    copy_app "$work/app-$side"
    (cd "$work/app-$side" && unset CARGO_TARGET_DIR && export XTASK_CACHE_DIR="$work/cache-$side" &&
        quiet "$logs/setup.log" "$work/xtask-$side" build --builder host --quiet)
done

wipe() { # SIDE: the copy as a fresh clone finds it; its shared cache emptied for `empty`.
    local app="$work/app-$1"
    find "$app/target/lambda" -mindepth 1 -maxdepth 1 ! -name uv ! -name tools -exec rm -rf {} +
    rm -rf "$app/dist"
    if [[ "$mode" == empty ]]; then
        chmod -R u+w "$work/cache-$1" 2>/dev/null || true
        rm -rf "$work/cache-$1"
    fi
}

times="$work/times.tsv"
: >"$times"
echo "== $runs rounds, $mode, the order alternating"
for round in $(seq "$runs"); do
    order=(base head)
    if (( round % 2 == 0 )); then order=(head base); fi
    for side in "${order[@]}"; do
        wipe "$side"
        seconds="$(cd "$work/app-$side" && export XTASK_CACHE_DIR="$work/cache-$side" &&
            /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "$work/xtask-$side" build --builder host --quiet \
                >>"$logs/runs.log" 2>&1 && cat "$work/time.txt")"
        printf '%s\t%s\t%s\n' "$round" "$side" "$seconds" >>"$times"
        echo "  round $round $side: $seconds (wall, user, system s)"
    done
done

python3 - "$times" "$base_commit" "$mode" "$out/cold-ab-results.md" <<'EOF'
import statistics
import sys

path, commit, mode, results = sys.argv[1:]
rows = [line.split("\t") for line in open(path).read().splitlines()]
by_side = {"base": {}, "head": {}}
for round_, side, figures in rows:
    wall, user, system = (float(x) for x in figures.split())
    by_side[side][round_] = (wall, user + system)
ratios = [by_side["head"][r][0] / by_side["base"][r][0] for r in by_side["base"]]
lines = [
    f"Cold build ({mode}), interleaved rounds, {len(ratios)} of each side:",
    "",
    "| side | median s | min–max s | CPU (cores) |",
    "|---|---|---|---|",
]
for side, name in (("base", f"`{commit[:12]}`"), ("head", "this checkout")):
    walls = [w for w, _ in by_side[side].values()]
    cores = statistics.median(cpu / w for w, cpu in by_side[side].values())
    lines.append(
        f"| {name} | {statistics.median(walls):.3f} | {min(walls):.3f}–{max(walls):.3f} | {cores:.2f} |"
    )
lines += ["", f"this checkout / `{commit[:12]}`, the median of the rounds' ratios: {statistics.median(ratios):.3f}"]
text = "\n".join(lines) + "\n"
open(results, "w").write(text)
print(text)
EOF
