#!/usr/bin/env bash
# An image function (`package = "image"`) built and pushed by the xtask
# against `docker build` + `docker push` of the equivalent Dockerfile (same
# base, same files), to the same registry on 127.0.0.1, side by side in one
# run; each round times both, in alternating order:
#
#   a. cold:        xtask: target/lambda/store/{base,image,image-layer} and dist/images removed
#                   (the base is pulled from the registry again; the dependency layers' and the
#                   function's ZIPs stay built); docker: the pushed image and the base removed
#                   from docker (`docker rmi`, which deletes the legacy builder's cached steps with
#                   it), BuildKit's cache emptied (`docker builder prune -af`: daemon-wide).
#                   The registry holds the base only: the pushed repositories are deleted from
#                   its storage before each run.
#   b. cold, base local: the same, but the base stays (xtask: target/lambda/store/base; docker:
#                   the pulled base image).
#   c. one edit:    a comment appended to the function's handler (a new one each run), then
#                   both again, every cache warm and the previous image in the registry.
#
#   xtask:  target/debug/xtask build --builder host && target/debug/xtask push
#           (after the edit, also target/debug/xtask push alone: it builds what the image needs)
#   docker: docker build -t REGISTRY/docker/FUNCTION CONTEXT && docker push REGISTRY/docker/FUNCTION
#
# The xtask is the debug binary (built here, untimed, with `cargo build -p xtask`) called
# directly: cargo's start-up (about 0.1 s) is not in the figures. The example
# application is copied to target/bench/image/app (the repository's Cargo.toml, lambdas/,
# layers/ and what cargo needs); its FUNCTION is built as a ZIP once (untimed, PyPI needed),
# the ZIPs are unzipped into docker's context (layers' files to /opt, the function's to
# /var/task, as Lambda and the xtask's image put them), then FUNCTION is switched to
# `package = "image"` on the base by digest, pushed to REGISTRY/app/FUNCTION.
#
# The base: tests/fixtures/lambda-base (the test image xtask-test-python:bookworm with AWS's
# runtime interface client, as the tests build it), built with docker and pushed to a
# registry (Debian's docker-registry) this script starts on a free port of 127.0.0.1 and
# stops on exit. The runtime client is XTASK_RUNTIME_CLIENT when set, else the one the
# copy's `xtask invoke` installs (untimed).
#
#   bash bench/image.sh
#
# Environment:
#   BENCH_RUNS=N          timed rounds per scenario (default 5; one untimed warm-up round before)
#   BENCH_FUNCTION=NAME   the function made an image (default sms: the core, sms and shared layers)
#   BENCH_SCENARIOS="…"   which of `cold base-local edit` to run (default: all three)
#   XTASK_RUNTIME_CLIENT  the runtime interface client's site-packages for the base (see above)
#
# Needs docker (with xtask-test-python:bookworm; `cargo xtask ci` builds it), docker-registry
# (apt-get install docker-registry), unzip, python3, cargo. Writes under target/bench/
# (image-results.md, image-times.tsv, image/ with the copy, the registry's storage, logs).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

runs="${BENCH_RUNS:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "BENCH_RUNS must be a positive integer, got '$runs'" >&2
    exit 2
fi
function="${BENCH_FUNCTION:-sms}"
scenarios="${BENCH_SCENARIOS:-cold base-local edit}"
for scenario in $scenarios; do
    case "$scenario" in
        cold|base-local|edit) ;;
        *) echo "BENCH_SCENARIOS: unknown scenario '$scenario' (cold, base-local, edit)" >&2; exit 2 ;;
    esac
done
for tool in docker docker-registry unzip python3 cargo curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$tool not found on PATH (docker-registry: apt-get install -y docker-registry)" >&2
        exit 1
    fi
done
if ! docker image inspect xtask-test-python:bookworm >/dev/null 2>&1; then
    echo "docker has no image xtask-test-python:bookworm, the base's base (cargo xtask ci builds it)" >&2
    exit 1
fi

out="$repo_root/target/bench"
work="$out/image"
app="$work/app"
ctx="$work/docker"
logs="$work/logs"
results_md="$out/image-results.md"
times_tsv="$out/image-times.tsv"

registry_pid=""
cleanup() {
    if [[ -n "$registry_pid" ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    if [[ -n "${registry:-}" ]]; then
        # Every image of the run (an edit round leaves the one before untagged).
        docker images -q --no-trunc "$registry/*/*" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

rm -rf "$work"
rm -f "$results_md" "$times_tsv"
mkdir -p "$logs"

# quiet LOG CMD...: an untimed step, its output to LOG, its last lines shown if it fails.
quiet() {
    local log="$1"; shift
    echo "+ $*   # not timed" >>"$logs/commands.txt"
    if ! "$@" >>"$log" 2>&1; then
        echo "failed: $*; last lines of $log:" >&2
        tail -n 20 "$log" | sed 's/^/    /' >&2
        exit 1
    fi
}

echo "== building the xtask (cargo build -p xtask; not timed)"
quiet "$logs/setup.log" cargo build -q -p xtask
xtask="${CARGO_TARGET_DIR:-$repo_root/target}/debug/xtask"
case "$xtask" in /*) ;; *) xtask="$repo_root/$xtask" ;; esac
# The copy keeps its own target folder (its store, its uv cache).
unset CARGO_TARGET_DIR UV_CACHE_DIR

echo "== copying the example application to ${app#"$repo_root"/}"
mkdir -p "$app"
cp -R Cargo.toml Cargo.lock .cargo xtask layers lambdas "$app/"
cd "$app"
# The function's source folder and handler file, and its handler.
read -r source handler_file handler < <(python3 - "$function" <<'PY'
import sys, tomllib
table = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["metadata"]["lambda"]
function = table["functions"].get(sys.argv[1])
if function is None:
    sys.exit(f"no function {sys.argv[1]} in Cargo.toml")
print(function["source"], function["handler"].rsplit(".", 1)[0] + ".py", function["handler"])
PY
)
[[ -n "${handler:-}" ]] || exit 1
handler_module="$source/$handler_file"
echo "== the first build of the copy, as ZIPs (PyPI for its layers; not timed)"
quiet "$logs/setup.log" "$xtask" build --builder host --quiet

runtime_client="${XTASK_RUNTIME_CLIENT:-}"
if [[ -z "$runtime_client" ]]; then
    quiet "$logs/setup.log" "$xtask" invoke cors --event lambdas/events/cors/preflight_allowed.json \
        --env ALLOWED_ORIGINS=http://localhost:3000 --builder host --quiet
    runtime_client="$(ls -d "$app"/target/lambda/runtime/*awslambdaric*/site-packages | head -n 1)"
fi
if [[ ! -d "$runtime_client/awslambdaric" ]]; then
    echo "no awslambdaric in $runtime_client: set XTASK_RUNTIME_CLIENT to the runtime client's site-packages" >&2
    exit 1
fi

echo "== docker's context from the ZIPs (layers to /opt, the function to /var/task)"
layers="$(python3 - "$function" <<'PY'
import json, sys
print(" ".join(json.load(open("dist/manifest.json"))["functions"][sys.argv[1]]["layers"]))
PY
)"
mkdir -p "$ctx"
for layer in $layers; do
    quiet "$logs/setup.log" unzip -q -o "dist/layers/$layer.zip" -d "$ctx/layer-$layer"
done
quiet "$logs/setup.log" unzip -q -o "dist/functions/$function.zip" -d "$ctx/function"

echo "== a registry on 127.0.0.1"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
registry="127.0.0.1:$port"
storage="$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: $registry
  secret: xtask-bench
EOF
docker-registry serve "$work/registry.yml" >"$logs/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://$registry/v2/" && break
    sleep 0.1
done

echo "== the base: tests/fixtures/lambda-base, pushed as $registry/lambda/python:3.11"
mkdir -p "$work/base"
cp "$repo_root/xtask/tests/fixtures/lambda-base/Dockerfile" "$repo_root/xtask/tests/fixtures/lambda-base/lambda-entrypoint.sh" "$work/base/"
cp -R "$runtime_client" "$work/base/runtime"
quiet "$logs/setup.log" docker build --quiet --network none -t "$registry/lambda/python:3.11" "$work/base"
docker push "$registry/lambda/python:3.11" >"$logs/base-push.log" 2>&1
base_digest="$(grep -o 'sha256:[0-9a-f]\{64\}' "$logs/base-push.log" | tail -n 1)"
base="$registry/lambda/python@$base_digest"
quiet "$logs/setup.log" docker rmi "$registry/lambda/python:3.11"
echo "   $base"

cat >"$ctx/Dockerfile" <<EOF
FROM $base
$(for layer in $layers; do echo "COPY layer-$layer/ /opt/"; done)
COPY function/ /var/task/
CMD ["$handler"]
EOF

echo "== $function made an image on the base, pushed to $registry/app/$function"
python3 - "$function" "$base" "$registry/app" <<'PY'
import sys
function, base, repository = sys.argv[1:]
text = open("Cargo.toml").read()
header = f"[workspace.metadata.lambda.functions.{function}]\n"
assert header in text, header
text = text.replace(header, f'{header}package = "image"\nimage_base = "{base}"\n', 1)
header = "[workspace.metadata.lambda]\n"
text = text.replace(header, f'{header}image_repository = "{repository}"\n', 1)
open("Cargo.toml", "w").write(text)
PY

xtask_cmd="$xtask build --builder host --quiet && $xtask push --quiet"
xtask_push_cmd="$xtask push --quiet"
docker_cmd="docker build -t $registry/docker/$function $ctx && docker push $registry/docker/$function"
cp -p "$handler_module" "$work/handler.orig"

# The preparations, untimed.
forget_pushes() { # REPOSITORY: the registry forgets it (its blobs stay, unlinked)
    rm -rf "$storage/docker/registry/v2/repositories/$1"
}
prepare_xtask() { # SCENARIO
    case "$1" in
        cold) rm -rf target/lambda/store/base target/lambda/store/image target/lambda/store/image-layer dist/images
              forget_pushes app ;;
        base-local) rm -rf target/lambda/store/image target/lambda/store/image-layer dist/images
              forget_pushes app ;;
        edit) edit "$handler_module" ;;
    esac
}
prepare_docker() { # SCENARIO
    case "$1" in
        cold|base-local)
              # rmi also deletes the untagged parents: the legacy builder's cache of this build.
              docker images -q --no-trunc "$registry/docker/$function" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1 || true
              if [[ "$1" == cold ]]; then docker rmi -f "$base" >/dev/null 2>&1 || true; fi
              docker builder prune -af >/dev/null 2>&1
              forget_pushes docker ;;
        edit) edit "$ctx/function/$handler_file" ;;
    esac
}
edit_count=0
edit() { # FILE: the original handler and a new comment
    edit_count=$((edit_count + 1))
    cp "$work/handler.orig" "$1"
    echo "# bench edit $edit_count" >>"$1"
}

# timed LOG CMD: runs CMD with sh, sets $elapsed (seconds).
now() { date +%s.%N; }
elapsed=""
timed() {
    local log="$1" start end
    start="$(now)"
    if ! sh -c "$2" >"$log" 2>&1; then
        echo "failed: $2; last lines of $log:" >&2
        tail -n 20 "$log" | sed 's/^/    /' >&2
        exit 1
    fi
    end="$(now)"
    elapsed="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')"
}

machine="$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start, $(docker version --format 'docker {{.Server.Version}}' 2>/dev/null)"
echo "== $machine"
{
    echo "xtask: (cd $app && $xtask_cmd)"
    echo "xtask, push only (one edit): (cd $app && $xtask_push_cmd)"
    echo "docker: $docker_cmd"
    echo "Dockerfile:"
    sed 's/^/    /' "$ctx/Dockerfile"
} | tee -a "$logs/commands.txt"
printf 'scenario\tround\tside\tseconds\n' >"$times_tsv"

for scenario in $scenarios; do
    for ((round = 0; round <= runs; round++)); do
        if ((round % 2)); then order="docker xtask"; else order="xtask docker"; fi
        # After an edit, also `xtask push` alone (it builds what the image needs first).
        if [[ "$scenario" == edit ]]; then
            if ((round % 2)); then order="docker push-only xtask"; else order="xtask push-only docker"; fi
        fi
        line="  $scenario round $round$( ((round)) || echo ' (warm-up)'):"
        for side in $order; do
            case "$side" in
                xtask) prepare_xtask "$scenario"; cmd="$xtask_cmd" ;;
                push-only) prepare_xtask "$scenario"; cmd="$xtask_push_cmd" ;;
                docker) prepare_docker "$scenario"; cmd="$docker_cmd" ;;
            esac
            timed "$logs/$scenario-$round-$side.log" "$cmd"
            line+=" $side ${elapsed}s"
            if ((round)); then printf '%s\t%s\t%s\t%s\n' "$scenario" "$round" "$side" "$elapsed" >>"$times_tsv"; fi
        done
        echo "$line"
    done
done
cp "$work/handler.orig" "$handler_module"

# The image is there and the same function: the last xtask push's digest was pushed.
uri="$(grep -o "$registry/app/$function@sha256:[0-9a-f]*" "$logs/edit-$runs-xtask.log" | tail -n 1 || true)"
echo "== last xtask push: ${uri:-no digest printed}"

python3 - "$times_tsv" "$runs" "$machine" "$function" >"$results_md" <<'PY'
import csv, statistics, sys

path, runs, machine, function = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter="\t"))
print(f"{machine}; function `{function}`; medians of {runs} rounds (xtask and docker back to back, alternating which goes first)\n")
print("| scenario | xtask build + push s | docker build + push s | xtask / docker (median of the rounds' ratios) | targets: ≤ 0.5 s, ≤ 0.2× |")
print("|---|---|---|---|---|")
labels = {"cold": "cold (base pulled)", "base-local": "cold, base already local", "edit": "one handler edit"}
for scenario, label in labels.items():
    if not any(row["scenario"] == scenario for row in rows):
        continue
    times = {"xtask": {}, "docker": {}, "push-only": {}}
    for row in rows:
        if row["scenario"] == scenario:
            times[row["side"]][row["round"]] = float(row["seconds"])
    x, d = statistics.median(times["xtask"].values()), statistics.median(times["docker"].values())
    ratio = statistics.median(times["xtask"][r] / times["docker"][r] for r in times["xtask"])
    target = ""
    if scenario == "edit":
        target = f"{'holds' if x <= 0.5 else 'misses'} / {'holds' if ratio <= 0.2 else 'misses'}"
    print(f"| {label} | {x:.3f} ({min(times['xtask'].values()):.3f}–{max(times['xtask'].values()):.3f}) "
          f"| {d:.3f} ({min(times['docker'].values()):.3f}–{max(times['docker'].values()):.3f}) | {ratio:.3f} | {target} |")
    if scenario == "edit":
        p = {row["round"]: float(row["seconds"]) for row in rows if row["scenario"] == scenario and row["side"] == "push-only"}
        pm = statistics.median(p.values())
        pr = statistics.median(p[r] / times["docker"][r] for r in p)
        print(f"| one handler edit, `xtask push` alone | {pm:.3f} ({min(p.values()):.3f}–{max(p.values()):.3f}) "
              f"| {d:.3f} | {pr:.3f} | {'holds' if pm <= 0.5 else 'misses'} / {'holds' if pr <= 0.2 else 'misses'} |")
PY
echo
cat "$results_md"
echo "per-run times: ${times_tsv#"$repo_root"/}; logs: ${logs#"$repo_root"/}"
