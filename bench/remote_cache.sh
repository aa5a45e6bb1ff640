#!/usr/bin/env bash
# Cold `build-layers` of the example application (empty local cache, empty
# uv cache) from a warm remote cache vs from the package index, with moto's
# S3 on 127.0.0.1 as the remote:
#
#   bash bench/remote_cache.sh [RUNS]      (default 5 runs each, hyperfine)
#
# Needs uv on PATH (moto's virtualenv is made from
# terraform/tests/emulator/requirements.txt), curl and hyperfine; the index
# arm needs the package index.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
work="$(mktemp -d)"
venv="$root/target/bench-moto-venv"

cleanup() {
    if [[ -n "${moto_pid:-}" ]]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ ! -x "$venv/bin/python" ]]; then
    UV_PYTHON_DOWNLOADS=never uv venv --quiet --python python3 "$venv"
    uv pip install --quiet --python "$venv/bin/python" -r "$root/terraform/tests/emulator/requirements.txt"
fi
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
curl -s --fail --aws-sigv4 "aws:amz:us-east-1:s3" --user testing:testing -X PUT "$AWS_ENDPOINT_URL_S3/bench" >/dev/null

(cd "$root" && cargo build --quiet -p xtask)
xtask="$root/target/debug/xtask"
cd "$root"

# Warm the remote cache once.
CARGO_TARGET_DIR="$work/warm" XTASK_REMOTE_CACHE=s3://bench/layers "$xtask" build-layers --builder host --quiet

# A second clone with its own, empty local cache and the package index out
# of reach: every request that is not to 127.0.0.1 goes to a proxy on a port
# nothing listens on (the proxy variables are not part of any key, unlike the
# index ones). Without the remote cache that build must fail; with it, it
# must give the same layer ZIPs as the first.
sums() { (cd "$1/dist/layers" && sha256sum core.zip jwt.zip sms.zip); }
sums "$root" >"$work/first.sha256"
git clone --quiet "$root" "$work/clone"
offline=(env HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9
    https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
    no_proxy=127.0.0.1,localhost UV_CACHE_DIR="$work/clone-uv-cache" CARGO_TARGET_DIR="$work/clone-target")
if (cd "$work/clone" && "${offline[@]}" "$xtask" build-layers --builder host --quiet) 2>"$work/control.log"; then
    echo "the index was reachable: the control build without the remote cache succeeded" >&2
    exit 1
fi
echo "control: without the remote cache the clone's build fails ($(grep -m1 -o 'error[^:]*: [^(]*' "$work/control.log" || tail -1 "$work/control.log"))"
(cd "$work/clone" && "${offline[@]}" XTASK_REMOTE_CACHE=s3://bench/layers "$xtask" build-layers --builder host)
sums "$work/clone" >"$work/second.sha256"
if ! diff "$work/first.sha256" "$work/second.sha256"; then
    echo "the clone's layers differ from the first build's" >&2
    exit 1
fi
echo "the clone built core, jwt and sms from the remote cache with the index unreachable, byte-identical:"
cat "$work/second.sha256"

# Each run: a fresh target directory (local store, uv cache and tools' memo
# empty); only XTASK_REMOTE_CACHE differs between the two arms.
hyperfine --runs "$runs" --export-json "$work/result.json" \
    --prepare "rm -rf '$work/t'" \
    -n "from the remote cache (moto)" \
    "CARGO_TARGET_DIR='$work/t' XTASK_REMOTE_CACHE=s3://bench/layers '$xtask' build-layers --builder host --quiet" \
    -n "from the package index" \
    "CARGO_TARGET_DIR='$work/t' '$xtask' build-layers --builder host --quiet"
python3 - "$work/result.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for result in results:
    print(f"{result['command']}: median {result['median']:.3f} s over {len(result['times'])} runs")
print(f"ratio of medians: {results[1]['median'] / results[0]['median']:.1f}x")
PY
