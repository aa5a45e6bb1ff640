#!/usr/bin/env bash
# Side-by-side wall-clock benchmark of building the three dependency layers
# (core, jwt, sms; python3.11 x86_64):
#
#   1. cargo xtask build-layers --builder host   cold, then no-op (run again)
#   2. bench/baseline_pip.sh                      cold (pip --platform ... + zip)
#   3. sam build (SAM CLI from bench/setup.sh)    cold, then --cached no-op
#
#   bash bench/setup.sh && bash bench/build_layers.sh
#
# Environment:
#   BENCH_RUNS=N     repeat each measurement N times and report the median (default 1)
#   BENCH_VENV=DIR   the venv made by bench/setup.sh (default target/bench-venv)
#   BENCH_PYTHON=P   interpreter for the pip baseline (default python3)
#
# Everything it writes goes under target/ (target/bench/ for the baselines,
# target/lambda/ and dist/ for the xtask, which are its own output locations).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

runs="${BENCH_RUNS:-1}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
venv="${BENCH_VENV:-$repo_root/target/bench-venv}"
sam="$venv/bin/sam"
work="$repo_root/target/bench"
logs="$work/logs"

# SAM would otherwise try to send telemetry on every run.
export SAM_CLI_TELEMETRY=0

if [[ ! -x "$sam" ]]; then
    echo "sam not found at $sam: run 'bash bench/setup.sh' first" >&2
    exit 1
fi
if ! command -v zip >/dev/null 2>&1; then
    echo "zip not found; install it with: apt-get install -y zip" >&2
    exit 1
fi

rm -rf "$work"
mkdir -p "$logs"

commands=()   # every command run, in order, printed at the end

# now: wall-clock seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }

# timed LOG CMD...: runs CMD (output to LOG), records it, sets $elapsed.
# Returns CMD's exit status.
elapsed=""
timed() {
    local log="$1"; shift
    local start end status=0
    commands+=("(cd $PWD && $*)")
    start="$(now)"
    "$@" >"$log" 2>&1 || status=$?
    end="$(now)"
    elapsed="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
    if ((status != 0)); then
        echo "  FAILED (exit $status) after ${elapsed}s: $*; last lines of $log:" >&2
        tail -n 15 "$log" | sed 's/^/    /' >&2
    fi
    return "$status"
}

# untimed CMD...: runs a preparation step and records it.
untimed() {
    commands+=("(cd $PWD && $*)   # not timed")
    "$@"
}

# median V...: median of the given numbers, ignoring empty ones ("" if none).
median() {
    printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) exit;
              if (NR % 2) printf "%.2f", v[(NR + 1) / 2];
              else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B to two decimals ("n/a" if either is missing).
ratio() {
    if [[ -z "$1" || -z "$2" ]]; then echo "n/a"; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

# verdict RATIO LIMIT: "meets" if RATIO <= LIMIT.
verdict() {
    if [[ "$1" == "n/a" ]]; then echo "n/a"; return; fi
    awk -v r="$1" -v l="$2" 'BEGIN { print (r <= l ? "meets target" : "misses target") }'
}

echo "== machine: $(nproc) cores, $(python3 --version 2>&1), $("$sam" --version), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== runs per measurement: $runs (median reported)"

# --- xtask: compile outside the timing --------------------------------------
# Built once up front, and again (untimed, a no-op unless the sources changed)
# right before every timed run, so that `cargo xtask` never compiles inside a
# measurement even when xtask/ is being edited while the benchmark runs.
prebuild_xtask() {
    commands+=("(cd $repo_root && cargo build -p xtask)   # not timed")
    cargo build -p xtask >>"$logs/xtask-compile.log" 2>&1
}
xtask_seen=0
echo "== building the xtask binary (not timed)"
if ! prebuild_xtask; then
    echo "xtask: not available yet (cargo build -p xtask failed; see $logs/xtask-compile.log)"
fi

# Per-round results; an empty string where a measurement failed or was skipped.
xtask_cold=(); xtask_noop=(); pip_cold=(); sam_cold=(); sam_noop=()

for ((i = 1; i <= runs; i++)); do
    echo "== round $i of $runs"
    xc=""; xn=""; pc=""; sc=""; sn=""

    # --- xtask cold, then no-op ----------------------------------------------
    if ! prebuild_xtask; then
        echo "  xtask: not available yet (cargo build -p xtask failed; see $logs/xtask-compile.log)"
    else
        # The tool keeps all its caches (its uv cache included) under target/lambda.
        untimed rm -rf target/lambda dist
        if timed "$logs/xtask-cold-$i.log" env -u UV_CACHE_DIR cargo xtask build-layers --builder host; then
            xc="$elapsed"; echo "  xtask cold:         ${elapsed}s"
            if prebuild_xtask &&
                timed "$logs/xtask-noop-$i.log" env -u UV_CACHE_DIR cargo xtask build-layers --builder host; then
                xn="$elapsed"; echo "  xtask no-op:        ${elapsed}s"
            else
                echo "  xtask: no-op run failed (see $logs/xtask-noop-$i.log)"
            fi
            for profile in core jwt sms; do
                if [[ ! -f "dist/layers/$profile.zip" ]]; then
                    echo "  warning: xtask produced no dist/layers/$profile.zip" >&2
                fi
            done
        else
            echo "  xtask: not available yet (build-layers failed; see $logs/xtask-cold-$i.log)"
        fi
    fi

    # --- pip baseline, cold: fresh output dir and an empty pip cache -----------
    pip_out="$work/pip-out-$i"
    pip_cache="$work/pip-cache-$i"
    untimed rm -rf "$pip_out" "$pip_cache"
    if timed "$logs/pip-cold-$i.log" env PIP_CACHE_DIR="$pip_cache" bash bench/baseline_pip.sh "$pip_out"; then
        pc="$elapsed"; echo "  pip script cold:    ${elapsed}s"
    fi

    # --- sam build: cold (empty build dir, empty --cache-dir), then --cached ----
    # sam runs on a copy (template at bench/sam/, requirements at layers/, so the
    # template's ContentUri ../../layers/<profile> resolves) to keep .aws-sam/
    # out of the repository. The cold run passes --cached too: with an empty
    # cache it builds everything and fills the cache (plain `sam build` would
    # not fill it, and the next --cached run would rebuild everything).
    sam_root="$work/sam-$i"
    sam_cache="$work/sam-cache-$i"
    untimed rm -rf "$sam_root" "$sam_cache" "$work/pip-cache-sam-$i"
    untimed mkdir -p "$sam_root/bench/sam" "$sam_root/layers"
    untimed cp bench/sam/template.yaml "$sam_root/bench/sam/template.yaml"
    for profile in core jwt sms; do
        untimed mkdir -p "$sam_root/layers/$profile"
        untimed cp "layers/$profile/requirements.txt" "$sam_root/layers/$profile/requirements.txt"
    done
    cd "$sam_root/bench/sam"
    untimed rm -rf .aws-sam
    if timed "$logs/sam-cold-$i.log" env PIP_CACHE_DIR="$work/pip-cache-sam-$i" \
        "$sam" build --cached --cache-dir "$sam_cache"; then
        sc="$elapsed"; echo "  sam build cold:     ${elapsed}s"
        if timed "$logs/sam-noop-$i.log" "$sam" build --cached --cache-dir "$sam_cache"; then
            sn="$elapsed"; echo "  sam build --cached: ${elapsed}s"
        fi
    fi
    cd "$repo_root"
    for layer in CoreLayer JwtLayer SmsLayer; do
        if [[ ! -d "$sam_root/bench/sam/.aws-sam/build/$layer/python" ]]; then
            echo "  warning: sam produced no $layer/python" >&2
        fi
    done
    xtask_cold+=("$xc"); xtask_noop+=("$xn"); pip_cold+=("$pc"); sam_cold+=("$sc"); sam_noop+=("$sn")
    if [[ -n "$xc" ]]; then xtask_seen=1; fi
done

m_xc="$(median "${xtask_cold[@]}")"
m_xn="$(median "${xtask_noop[@]}")"
m_pc="$(median "${pip_cold[@]}")"
m_sc="$(median "${sam_cold[@]}")"
m_sn="$(median "${sam_noop[@]}")"

show() { if [[ -n "$1" ]]; then echo "$1"; else echo "${2:-not run}"; fi; }

echo
echo "== results (wall-clock seconds, median of $runs)"
printf '%-44s %10s %10s\n' "tool" "cold s" "no-op s"
printf '%-44s %10s %10s\n' "cargo xtask build-layers --builder host" \
    "$(show "$m_xc" "n/a")" "$(show "$m_xn" "n/a")"
printf '%-44s %10s %10s\n' "bench/baseline_pip.sh (pip --platform + zip)" \
    "$(show "$m_pc" "failed")" "= cold"
printf '%-44s %10s %10s\n' "sam build / sam build --cached" \
    "$(show "$m_sc" "failed")" "$(show "$m_sn" "failed")"
if ((!xtask_seen)); then
    echo "xtask: not available yet"
fi
if ((runs > 1)); then
    echo
    echo "== per round (seconds; ratios within one round, where the tools ran back to back)"
    printf '%5s %8s %8s %8s %8s %8s   %10s %12s %10s\n' round x_cold x_noop pip_cold sam_cold sam_noop \
        x/sam_cold x/sam_cached x/pip_cold
    per_cold_sam=(); per_noop_sam=(); per_cold_pip=()
    for ((i = 0; i < runs; i++)); do
        a="$(ratio "${xtask_cold[i]}" "${sam_cold[i]}")"
        b="$(ratio "${xtask_noop[i]}" "${sam_noop[i]}")"
        c="$(ratio "${xtask_cold[i]}" "${pip_cold[i]}")"
        printf '%5s %8s %8s %8s %8s %8s   %10s %12s %10s\n' "$((i + 1))" \
            "${xtask_cold[i]:--}" "${xtask_noop[i]:--}" "${pip_cold[i]:--}" "${sam_cold[i]:--}" "${sam_noop[i]:--}" \
            "$a" "$b" "$c"
        if [[ "$a" != n/a ]]; then per_cold_sam+=("$a"); fi
        if [[ "$b" != n/a ]]; then per_noop_sam+=("$b"); fi
        if [[ "$c" != n/a ]]; then per_cold_pip+=("$c"); fi
    done
    printf '%5s %8s %8s %8s %8s %8s   %10s %12s %10s\n' median "$(show "$m_xc" -)" "$(show "$m_xn" -)" \
        "$(show "$m_pc" -)" "$(show "$m_sc" -)" "$(show "$m_sn" -)" \
        "$(show "$(median ${per_cold_sam[@]+"${per_cold_sam[@]}"})" n/a)" \
        "$(show "$(median ${per_noop_sam[@]+"${per_noop_sam[@]}"})" n/a)" \
        "$(show "$(median ${per_cold_pip[@]+"${per_cold_pip[@]}"})" n/a)"
fi

r_cold_sam="$(ratio "$m_xc" "$m_sc")"
r_noop_sam="$(ratio "$m_xn" "$m_sn")"
r_cold_pip="$(ratio "$m_xc" "$m_pc")"
echo
echo "== ratios of the medians"
printf '%-28s %6s   (target <= 0.33: %s)\n' "xtask_cold / sam_cold" "$r_cold_sam" "$(verdict "$r_cold_sam" 0.3334)"
printf '%-28s %6s   (target <= 0.10: %s)\n' "xtask_noop / sam_cached" "$r_noop_sam" "$(verdict "$r_noop_sam" 0.10)"
printf '%-28s %6s\n' "xtask_cold / pip_cold" "$r_cold_pip"

echo
echo "== commands run, in order (env: SAM_CLI_TELEMETRY=0)"
printf '  %s\n' "${commands[@]}"
echo
echo "logs: $logs"
