#!/usr/bin/env bash
# Side-by-side benchmark of the whole `cargo xtask build` graph (build-layers,
# package, check-limits, smoke), with hyperfine, in one run:
#
#   a. floor:        cargo xtask --help
#   b. no-op:        cargo xtask build            (example app, after one untimed full build)
#   c. one edit:     cargo xtask build            after appending a comment to lambdas/users/users_handler.py
#   d. SAM:          sam build --cached            no-op, and after the same one-handler edit, on the
#                                                  same workload (bench/sam/app-template.yaml), on a copy
#                                                  under target/bench/graph/sam-app/
#   e. at scale:     target/debug/xtask build      no-op and one edit, on a generated repository of
#                                                  500 functions / 20 profiles (bench/gen_repo.py)
#   f. cold:         cargo xtask build            with everything under target/lambda removed but
#                                                  uv's cache (target/lambda/uv), and dist/ removed
#
#   bash bench/setup.sh && bash bench/graph.sh
#
# Environment:
#   BENCH_RUNS=N          timed runs per scenario (default 5; one warm-up run before them)
#   BENCH_GEN_RUNS=N      timed runs for the generated repository (default BENCH_RUNS)
#   BENCH_GEN_FUNCTIONS=N functions in the generated repository (default 500)
#   BENCH_GEN_PROFILES=N  profiles in the generated repository (default 20)
#   BENCH_BUILDER=B       --builder for every xtask build (default host: no container probe is timed,
#                         and SAM builds without a container too)
#   BENCH_VENV=DIR        the venv made by bench/setup.sh (default target/bench-venv)
#   XTASK_BIN=PATH        the binary run in the generated repository (default target/debug/xtask,
#                         built here with `cargo build -p xtask`)
#
# Needs hyperfine (apt-get install -y hyperfine, or cargo install hyperfine),
# python3, cargo, the SAM venv of bench/setup.sh, and PyPI for the example
# app's first (untimed) builds. Writes only under target/ (hyperfine JSON:
# target/bench/graph-*.json; the markdown table: target/bench/graph-results.md;
# logs and copies: target/bench/graph/) and the tool's own dist/. The one
# handler it edits is restored on exit, also when interrupted.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

runs="${BENCH_RUNS:-5}"
gen_runs="${BENCH_GEN_RUNS:-$runs}"
gen_functions="${BENCH_GEN_FUNCTIONS:-500}"
gen_profiles="${BENCH_GEN_PROFILES:-20}"
builder="${BENCH_BUILDER:-host}"
for value in "$runs" "$gen_runs" "$gen_functions" "$gen_profiles"; do
    if ! [[ "$value" =~ ^[1-9][0-9]*$ ]]; then
        echo "BENCH_RUNS, BENCH_GEN_RUNS, BENCH_GEN_FUNCTIONS and BENCH_GEN_PROFILES must be positive integers, got '$value'" >&2
        exit 2
    fi
done
venv="${BENCH_VENV:-$repo_root/target/bench-venv}"
sam="$venv/bin/sam"
xtask_bin="${XTASK_BIN:-$repo_root/target/debug/xtask}"
case "$xtask_bin" in /*) ;; *) xtask_bin="$repo_root/$xtask_bin" ;; esac

bench_dir="$repo_root/target/bench"      # hyperfine JSON and the results table
work="$bench_dir/graph"                  # logs, SAM's copy, the generated repository
logs="$work/logs"
results_md="$bench_dir/graph-results.md"

# SAM would otherwise send telemetry on every run; the tool's uv cache is
# its own (target/lambda/uv) unless UV_CACHE_DIR says otherwise, so unset it.
export SAM_CLI_TELEMETRY=0
unset UV_CACHE_DIR

for tool in hyperfine python3 cargo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found on PATH (hyperfine: apt-get install -y hyperfine, or cargo install hyperfine)" >&2
        exit 1
    fi
done
if [[ ! -x "$sam" ]]; then
    echo "sam not found at $sam: run 'bash bench/setup.sh' first" >&2
    exit 1
fi

rm -rf "$work"
rm -f "$bench_dir"/graph-*.json "$results_md"
mkdir -p "$logs"

# --- the one edited handler is restored whatever happens -----------------------
edited="lambdas/users/users_handler.py"
saved="$work/users_handler.py.orig"
cp -p "$edited" "$saved"
restore() {
    if [[ -f "$saved" ]] && ! cmp -s "$saved" "$edited"; then
        cp -p "$saved" "$edited"
        echo "restored $edited"
    fi
}
trap restore EXIT
trap 'exit 130' INT TERM

# --- helpers ------------------------------------------------------------------
commands=()   # every command run, in order, printed at the end

# shown ARG...: the arguments as one shell line, quoted only where needed.
shown() {
    local out="" arg
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./=:@%+,-]+$ ]]; then
            out+="$arg "
        else
            out+="'${arg//\'/\'\\\'\'}' "
        fi
    done
    printf '%s' "${out% }"
}

# untimed LOG CMD...: runs a preparation step in $PWD, output to LOG; records and prints it.
untimed() {
    local log="$1"; shift
    local line
    line="(cd $PWD && $(shown "$@"))   # not timed"
    commands+=("$line")
    echo "+ $line"
    if ! "$@" >>"$log" 2>&1; then
        echo "  FAILED: $*; last lines of $log:" >&2
        tail -n 15 "$log" | sed 's/^/    /' >&2
        return 1
    fi
}

# bench NAME RUNS [hyperfine options...] -- CMD: times CMD (a shell command
# line, run in $PWD) with hyperfine; JSON to target/bench/graph-NAME.json.
# A failing scenario is reported and skipped, not fatal.
bench() {
    local name="$1" n="$2"; shift 2
    local options=()
    while [[ "$1" != "--" ]]; do options+=("$1"); shift; done
    shift
    local cmd="$1"
    local json="$bench_dir/graph-$name.json"
    local args=(hyperfine --warmup 1 --runs "$n" --export-json "$json" "${options[@]}" "$cmd")
    local line
    line="(cd $PWD && $(shown "${args[@]}"))"
    commands+=("$line")
    echo "+ $line"
    if ! "${args[@]}" 2>&1 | tee -a "$logs/hyperfine.log"; then
        echo "  $name: FAILED (see $logs/hyperfine.log); run the command above by hand to see why" >&2
        rm -f "$json"
    fi
    # The 1-minute load average right after: other work on the machine shows here.
    echo "$name $(cut -d' ' -f1 /proc/loadavg)" >>"$work/load.txt"
}

# The edit: the saved original plus one comment line with a fresh counter, so
# each run sees exactly one changed handler with new content.
edit_cmd() { # FILE ORIGINAL COUNTER
    printf 'n=$(( $(cat %q 2>/dev/null || echo 0) + 1 )) && echo "$n" > %q && cp %q %q && echo "# bench edit $n" >> %q' \
        "$3" "$3" "$2" "$1" "$1"
}

machine="$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, $(python3 --version 2>&1), $("$sam" --version), $(hyperfine --version)"
echo "== $machine"
echo "== runs per scenario: $runs (generated repository: $gen_runs), 1 warm-up each; builder: $builder"

# The compile is never timed: once here, and (a no-op unless xtask/ changed
# meanwhile) in hyperfine's --prepare before every cargo xtask run.
prebuild="cargo build -q -p xtask"
if ! untimed "$logs/compile.log" cargo build -p xtask; then
    echo "xtask: not available (cargo build -p xtask failed): its scenarios will fail; SAM still runs"
fi
xtask_build="cargo xtask build --builder $builder"

# --- a. the floor ------------------------------------------------------------
echo "== a. floor: cargo xtask --help"
bench floor-help "$runs" --prepare "$prebuild" -- "cargo xtask --help"

# --- b. no-op build of the example app -----------------------------------------
echo "== b. no-op: $xtask_build (example app)"
if untimed "$logs/app-first-build.log" cargo xtask build --builder "$builder"; then
    bench xtask-noop "$runs" --prepare "$prebuild" -- "$xtask_build"

    # --- c. one handler edited ---------------------------------------------------
    echo "== c. one handler edited: $xtask_build"
    bench xtask-edit "$runs" --prepare "$prebuild && $(edit_cmd "$edited" "$saved" "$work/counter-xtask")" -- "$xtask_build"
    restore
    # Bring dist/ back in line with the restored handler (not timed).
    untimed "$logs/app-first-build.log" cargo xtask build --builder "$builder" || true
else
    echo "  xtask: the first full build failed: skipping b and c"
fi

# --- d. sam build --cached on the same workload ---------------------------------
echo "== d. sam build --cached (bench/sam/app-template.yaml, on a copy)"
sam_root="$work/sam-app"
sam_cache="$work/sam-cache"
# The copy: the template at bench/sam/ so that its ../../ paths resolve; the
# requirements of the three profiles; lambdas/; and layers/shared/shared/, the
# source layer in the layout SAM's python layer build expects.
untimed "$logs/sam-copy.log" mkdir -p "$sam_root/bench/sam" "$sam_root/layers/shared"
untimed "$logs/sam-copy.log" cp bench/sam/app-template.yaml "$sam_root/bench/sam/app-template.yaml"
for profile in core jwt sms; do
    untimed "$logs/sam-copy.log" mkdir -p "$sam_root/layers/$profile"
    untimed "$logs/sam-copy.log" cp "layers/$profile/requirements.txt" "$sam_root/layers/$profile/requirements.txt"
done
untimed "$logs/sam-copy.log" cp -R lambdas "$sam_root/lambdas"
untimed "$logs/sam-copy.log" cp -R lambdas/shared "$sam_root/layers/shared/shared"
cd "$sam_root/bench/sam"
# Cold, untimed: with an empty --cache-dir it builds everything and fills the cache.
if untimed "$logs/sam-cold.log" "$sam" build --template-file app-template.yaml --cached --cache-dir "$sam_cache"; then
    bench sam-noop "$runs" -- "$sam build --template-file app-template.yaml --cached --cache-dir $sam_cache"
    sam_handler="$sam_root/$edited"
    cp -p "$sam_handler" "$work/sam_users_handler.py.orig"
    bench sam-edit "$runs" --prepare "$(edit_cmd "$sam_handler" "$work/sam_users_handler.py.orig" "$work/counter-sam")" \
        -- "$sam build --template-file app-template.yaml --cached --cache-dir $sam_cache"
else
    echo "  sam: the cold build failed: skipping d"
fi
cd "$repo_root"

# --- e. generated repository: 500 functions, 20 profiles ------------------------
echo "== e. generated repository: $gen_functions functions, $gen_profiles profiles (binary $xtask_bin)"
gen="$work/gen"
runtime_site="$work/runtime-site-empty"   # no boto3: the generated handlers do not import it
untimed "$logs/gen.log" mkdir -p "$runtime_site"
untimed "$logs/gen.log" python3 bench/gen_repo.py "$gen" --functions "$gen_functions" --profiles "$gen_profiles"
gen_build="$(shown env XTASK_RUNTIME_SITE="$runtime_site" "$xtask_bin" build --builder "$builder")"
cd "$gen"
if [[ -x "$xtask_bin" ]] &&
    untimed "$logs/gen-first-build.log" env XTASK_RUNTIME_SITE="$runtime_site" "$xtask_bin" build --builder "$builder"; then
    bench gen-noop "$gen_runs" -- "$gen_build"
    gen_handler="$gen/lambdas/f001/f001_handler.py"
    cp -p "$gen_handler" "$work/f001_handler.py.orig"
    bench gen-edit "$gen_runs" --prepare "$(edit_cmd "$gen_handler" "$work/f001_handler.py.orig" "$work/counter-gen")" \
        -- "$gen_build"
else
    echo "  xtask: no binary at $xtask_bin, or the first build of the generated repository failed: skipping e"
fi
cd "$repo_root"

# --- f. cold build, installer cache warm ----------------------------------------
echo "== f. cold: $xtask_build with everything under target/lambda removed but uv's cache"
wipe="mkdir -p target/lambda && find target/lambda -mindepth 1 -maxdepth 1 ! -name uv -exec rm -rf {} + ; rm -rf dist"
bench xtask-cold "$runs" --prepare "$prebuild && $wipe" -- "$xtask_build"
# The last timed run left a complete build: dist/ matches the sources again.

# --- results -------------------------------------------------------------------
restore
echo
python3 - "$bench_dir" "$runs" "$gen_runs" "$gen_functions" "$gen_profiles" "$builder" "$machine" >"$results_md" <<'PY'
import json, os, sys
bench_dir, runs, gen_runs, gen_functions, gen_profiles, builder, machine = sys.argv[1:]
print(f"`bash bench/graph.sh`: {machine}. Wall-clock seconds (hyperfine, 1 warm-up run); "
      "load after = the 1-minute load average right after the scenario (the benchmark itself adds 1-2).")
print()

loads = {}
try:
    with open(os.path.join(bench_dir, "graph", "load.txt")) as f:
        for line in f:
            key, value = line.split()
            loads[key] = value
except OSError:
    pass

def load(name):
    try:
        with open(os.path.join(bench_dir, f"graph-{name}.json")) as f:
            result = json.load(f)["results"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return result

rows = [
    ("a", "floor-help", "`cargo xtask --help` (floor)", runs),
    ("b", "xtask-noop", f"`cargo xtask build --builder {builder}`, no-op (example app)", runs),
    ("c", "xtask-edit", f"`cargo xtask build --builder {builder}`, one handler edited", runs),
    ("d", "sam-noop", "`sam build --cached`, no-op (same app)", runs),
    ("d", "sam-edit", "`sam build --cached`, one handler edited", runs),
    ("e", "gen-noop", f"`xtask build`, no-op, generated {gen_functions} functions / {gen_profiles} profiles", gen_runs),
    ("e", "gen-edit", f"`xtask build`, one handler edited, generated {gen_functions} / {gen_profiles}", gen_runs),
    ("f", "xtask-cold", f"`cargo xtask build --builder {builder}`, cold, uv cache warm", runs),
]
median = {}
print("| | scenario | median s | min–max s | runs | load after |")
print("|---|---|---|---|---|---|")
for letter, name, label, n in rows:
    r = load(name)
    if r is None:
        print(f"| {letter} | {label} | failed / not run | | | |")
        continue
    median[name] = r["median"]
    print(f"| {letter} | {label} | {r['median']:.3f} | {r['min']:.3f}–{r['max']:.3f} | {len(r['times'])} | {loads.get(name, '')} |")

ratios = [
    ("xtask no-op / sam --cached no-op", "xtask-noop", "sam-noop", "≤ 0.10"),
    ("xtask no-op / `--help` floor", "xtask-noop", "floor-help", ""),
    ("xtask one edit / sam one edit", "xtask-edit", "sam-edit", ""),
    ("xtask one edit / xtask no-op", "xtask-edit", "xtask-noop", ""),
    (f"generated no-op / example no-op", "gen-noop", "xtask-noop", ""),
    ("xtask cold (uv cache warm) / sam --cached no-op", "xtask-cold", "sam-noop", ""),
]
print()
print("| ratio of the medians | value | target |")
print("|---|---|---|")
for label, a, b, target in ratios:
    value = f"{median[a] / median[b]:.2f}" if a in median and b in median else "n/a"
    print(f"| {label} | {value} | {target} |")
PY
cat "$results_md"

echo
echo "== commands run, in order (env: SAM_CLI_TELEMETRY=0, UV_CACHE_DIR unset)"
printf '  %s\n' "${commands[@]}"
echo
echo "hyperfine JSON: $bench_dir/graph-*.json; table: $results_md; logs: $logs"
