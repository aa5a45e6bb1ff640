#!/usr/bin/env bash
# Benchmark of `cargo xtask package` on the example application, in a
# throwaway copy of the repository (target/bench/package/):
#
#   cold (no dist/), no-op (run again), after touching one handler;
#   and the function ZIP sizes with shared/ copied into every function
#   (bundle = true with the shared layer only) against the layer layout.
#
#   bash bench/package.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
cargo build -q -p xtask
xtask="$repo_root/target/debug/xtask"
work="$repo_root/target/bench/package"
rm -rf "$work"
mkdir -p "$work"
tar --exclude=./target --exclude=./dist --exclude=./.git -cf - . | tar -xf - -C "$work"
cd "$work"

now() { date +%s.%N; }
timed() {
    local start end
    start="$(now)"
    "$@" >/dev/null 2>&1
    end="$(now)"
    python3 -c "print(f'{$end - $start:.3f}')"
}

echo "command: (cd $work && $xtask package)"
cold="$(timed "$xtask" package)"
noop="$(timed "$xtask" package)"
echo "# touched" >> lambdas/cors/cors_handler.py
touched="$(timed "$xtask" package)"
printf '%-28s %8s s\n' "package, cold" "$cold" "package, no-op" "$noop" "package, one handler edited" "$touched"

sizes() {
    python3 - "$1" <<'PY'
import json, sys
manifest = json.load(open("dist/manifest.json"))
label = sys.argv[1]
total_zipped = 0
for name, function in sorted(manifest["functions"].items()):
    total_zipped += function["zipped_bytes"]
    print(f"{label:<8} {name:<12} {function['files']:>4} files {function['zipped_bytes']:>8} B zipped {function['unzipped_bytes']:>8} B unzipped")
shared = manifest["layers"].get("shared", {})
print(f"{label:<8} {'all':<12} {total_zipped:>19} B zipped in function ZIPs"
      + (f" (+ shared layer {shared['zipped_bytes']} B once)" if label == "layer" and shared else ""))
PY
}
sizes layer

# The seed's layout: shared/ copied into every function that uses it.
python3 - <<'PY'
text = open("Cargo.toml").read()
blocks = text.split("\n[")
for index, block in enumerate(blocks):
    if block.startswith("workspace.metadata.lambda.functions.") and '"shared"' in block:
        lines = [
            'layers = ["shared"]\nbundle = true' if line.startswith("layers =") else line
            for line in block.split("\n")
        ]
        blocks[index] = "\n".join(lines)
open("Cargo.toml", "w").write("\n[".join(blocks))
PY
"$xtask" package -q
sizes bundled
