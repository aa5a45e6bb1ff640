# Sourced by the scripts that time this checkout's xtask against another
# revision's (bench/noop.sh, bench/cold-ab.sh): what both sides need.
#
#   source bench/two-sides.sh
#   base_commit="$(commit_of REV)"     # exit 2 when REV names no commit
#   build_two_sides COMMIT WORK LOGS   # WORK/xtask-head and WORK/xtask-base
#   copy_app DIR                       # the example application, to DIR
#
# Run from the repository root, with `set -euo pipefail`.

commit_of() { # REV: its full commit id, or exit 2 naming it.
    local commit
    if ! commit="$(git rev-parse --verify --quiet "$1^{commit}")"; then
        echo "'$1' names no commit of this repository" >&2
        exit 2
    fi
    echo "$commit"
}

quiet() { # LOG CMD...: an untimed step; its last lines shown if it fails.
    local log="$1"; shift
    if ! "$@" >>"$log" 2>&1; then
        echo "failed: $*; last lines of $log:" >&2
        tail -n 20 "$log" | sed 's/^/    /' >&2
        exit 1
    fi
}

# This checkout's xtask and COMMIT's (exported with `git archive` to
# WORK/base and built there, in its own target folder), neither timed.
build_two_sides() {
    local commit="$1" work="$2" logs="$3"
    echo "== this checkout's xtask (cargo build -p xtask; not timed)"
    quiet "$logs/setup.log" cargo build -q -p xtask
    cp "${CARGO_TARGET_DIR:-$PWD/target}/debug/xtask" "$work/xtask-head"
    echo "== ${commit:0:12}'s xtask, from git archive (not timed)"
    mkdir -p "$work/base"
    git archive "$commit" | tar -x -C "$work/base"
    (cd "$work/base" && unset CARGO_TARGET_DIR && quiet "$logs/setup.log" cargo build -q -p xtask)
    cp "$work/base/target/debug/xtask" "$work/xtask-base"
}

# The example application (what a build reads) copied to DIR.
copy_app() {
    mkdir -p "$1"
    cp -R Cargo.toml Cargo.lock .cargo xtask layers lambdas "$1/"
}
