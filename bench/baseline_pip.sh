#!/usr/bin/env bash
# The "plain sequential script" a team writes today to build its layers:
# for each profile in order, AWS's documented no-container recipe
# (pip install --platform manylinux2014_x86_64 ... --target python/), then zip.
#
#   bash bench/baseline_pip.sh OUT_DIR
#
# Produces OUT_DIR/<profile>.zip (with python/ at the root) for core, jwt, sms.
# OUT_DIR must not exist or be empty. For a cold run, set PIP_NO_CACHE_DIR=1 or
# a fresh PIP_CACHE_DIR in the environment (bench/build_layers.sh does).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
if ! command -v zip >/dev/null 2>&1; then
    echo "baseline_pip: zip not found; install it with: apt-get install -y zip" >&2
    exit 1
fi

mkdir -p "$1"
out="$(cd "$1" && pwd)"
if [[ -n "$(ls -A "$out")" ]]; then
    echo "baseline_pip: $out is not empty" >&2
    exit 1
fi

python="${BENCH_PYTHON:-python3}"
profiles=(core jwt sms)

for profile in "${profiles[@]}"; do
    "$python" -m pip install --quiet --disable-pip-version-check \
        --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 \
        --only-binary=:all: \
        --target "$out/$profile/python" \
        -r "$repo_root/layers/$profile/requirements.txt"
    (cd "$out/$profile" && zip -rqX "../$profile.zip" python)
done
