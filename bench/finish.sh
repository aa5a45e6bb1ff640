#!/usr/bin/env bash
# Unzipped size and cold init duration of every example function for
# {none, checked-hash, sourceless} bytecode x {slim off, slim on}: see
# bench/finish.py. The table goes to target/bench/finish/results.md.
#
#   bash bench/finish.sh            # BENCH_RUNS cold inits per cell (default 7)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec python3 "$repo_root/bench/finish.py" "$@"
