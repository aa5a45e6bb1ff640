#!/usr/bin/env bash
# Creates the benchmark's virtualenv with the pinned SAM CLI (idempotent).
#
#   bash bench/setup.sh            # venv at target/bench-venv
#   BENCH_VENV=/some/dir bash bench/setup.sh
#
# The venv lives under target/ (git-ignored). Re-running it is a no-op once the
# pinned version is installed.
set -euo pipefail

SAM_CLI_VERSION="1.170.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

venv="${BENCH_VENV:-$repo_root/target/bench-venv}"
python="${BENCH_PYTHON:-python3}"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup: $python not found (set BENCH_PYTHON)" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup: creating venv at $venv"
    "$python" -m venv "$venv"
fi

installed="$("$venv/bin/python" -m pip show aws-sam-cli 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [[ "$installed" == "$SAM_CLI_VERSION" ]]; then
    echo "setup: aws-sam-cli $SAM_CLI_VERSION already installed in $venv"
else
    echo "setup: installing aws-sam-cli==$SAM_CLI_VERSION into $venv"
    "$venv/bin/python" -m pip install --quiet "aws-sam-cli==$SAM_CLI_VERSION"
fi

"$venv/bin/sam" --version

missing=()
for tool in zip cargo; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "setup: missing on PATH: ${missing[*]}" >&2
    echo "setup: zip comes from Debian (apt-get install -y zip); cargo from rustup" >&2
fi
