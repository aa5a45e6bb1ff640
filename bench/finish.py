#!/usr/bin/env python3
"""Size and cold init of every example function for each bytecode x slim cell.

For each cell of {none, checked-hash, sourceless} x {slim off, slim on}, a copy
of the repository (its tracked files) is built with those two settings; then, in
rounds, every function of every cell is invoked once with `cargo xtask invoke`
(each invoke is a new runtime process: a cold init) and the init duration of its
REPORT line is kept. Rounds interleave the cells, so that a slow moment of a
shared machine falls on all of them alike. Medians per function and cell, and
their ratio to today's default (bytecode none, slim off), go to a markdown table.

    python3 bench/finish.py [--runs N] [--out DIR]

Needs cargo, python3 and PyPI (the first build installs the layers). Writes only
under DIR (default target/bench/finish).
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ["none", "checked-hash", "sourceless"]
SLIMS = [False, True]
INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
# The example's budget (Cargo.toml: budget = "50 MiB").
BUDGET = 50 * 1048576


def cell_name(mode, slim):
    return f"{mode}, slim {'on' if slim else 'off'}"


def copy_repo(dest):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    for relative in filter(None, files.decode().split("\0")):
        source = os.path.join(ROOT, relative)
        if not os.path.isfile(source):
            continue
        target = os.path.join(dest, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)


def configure(dest, mode, slim):
    """Sets `bytecode` and `slim` in the copy's [workspace.metadata.lambda]."""
    path = os.path.join(dest, "Cargo.toml")
    lines = open(path, encoding="utf-8").read().splitlines()
    kept, table = [], None
    for line in lines:
        if line.startswith("["):
            table = line.strip()
        if table == "[workspace.metadata.lambda]" and re.match(r"\s*(bytecode|slim)\s*=", line):
            continue
        kept.append(line)
        if line.strip() == "[workspace.metadata.lambda]":
            kept.append(f'bytecode = "{mode}"')
            kept.append(f"slim = {'true' if slim else 'false'}")
    open(path, "w", encoding="utf-8").write("\n".join(kept) + "\n")


XTASK = os.path.join(ROOT, "target", "debug", "xtask")


def xtask(dest, env, *args, check=True):
    """The tool as `cargo xtask` runs it, built once from this checkout: through
    cargo, each copy would compile its own."""
    return subprocess.run([XTASK, *args], cwd=dest, env=env, capture_output=True, text=True, check=check)


def sizes(dest):
    manifest = json.load(open(os.path.join(dest, "dist", "manifest.json"), encoding="utf-8"))
    layers = manifest["layers"]
    out = {}
    for name, function in manifest["functions"].items():
        total = function["unzipped_bytes"]
        total += sum(layers[layer]["unzipped_bytes"] for layer in function["layers"])
        out[name] = total
    return out


def first_event(dest, function):
    folder = os.path.join(dest, "lambdas", "events", function)
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and n != "expect.json")
    return os.path.join(folder, names[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "7")),
                        help="cold inits per function and cell (default 7, at least 5)")
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "finish"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    out = os.path.abspath(args.out)
    subprocess.run(["cargo", "build", "-q", "-p", "xtask"], cwd=ROOT, check=True)
    # One target folder for every copy: one store, one uv, one runtime site.
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(out, "target"))
    cells = [(mode, slim) for mode in MODES for slim in SLIMS]
    dirs, size_of = {}, {}
    for mode, slim in cells:
        dest = os.path.join(out, "repos", f"{mode}-{'slim' if slim else 'full'}")
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        copy_repo(dest)
        configure(dest, mode, slim)
        started = time.monotonic()
        built = xtask(dest, env, "build", "--builder", "host", check=False)
        # A cell over the team's budget still counts: its products are built
        # and measured, and the table marks it.
        over_budget = built.returncode == 1 and "over the budget" in built.stderr
        if built.returncode != 0 and not over_budget:
            sys.exit(f"build of {cell_name(mode, slim)} failed:\n{built.stderr}")
        print(f"built {cell_name(mode, slim)} in {time.monotonic() - started:.1f} s", file=sys.stderr)
        dirs[(mode, slim)] = dest
        size_of[(mode, slim)] = sizes(dest)
    functions = sorted(size_of[cells[0]])
    inits = {(cell, function): [] for cell in cells for function in functions}
    for round_ in range(args.runs):
        for cell in cells:
            for function in functions:
                dest = dirs[cell]
                result = xtask(dest, env, "invoke", function, "--event", first_event(dest, function),
                               "--builder", "host", check=False)
                found = INIT.search(result.stderr)
                if not found:
                    sys.exit(f"no init duration for {function} ({cell_name(*cell)}):\n{result.stderr}")
                inits[(cell, function)].append(float(found.group(1)))
        print(f"round {round_ + 1}/{args.runs} done", file=sys.stderr)

    today = ("none", False)
    lines = [
        f"Cold init (median of {args.runs}, ms) and unzipped size with layers (MiB) per function;"
        " ratio = init / today's (none, slim off).",
        "",
        "| cell | " + " | ".join(functions) + " |",
        "|---|" + "---|" * len(functions),
    ]
    for cell in cells:
        row = []
        for function in functions:
            median = statistics.median(inits[(cell, function)])
            base = statistics.median(inits[(today, function)])
            mib = size_of[cell][function] / 1048576
            mark = " **over budget**" if size_of[cell][function] >= BUDGET else ""
            row.append(f"{median:.1f} ms ({median / base:.2f}×), {mib:.1f} MiB{mark}")
        lines.append(f"| {cell_name(*cell)} | " + " | ".join(row) + " |")
    table = "\n".join(lines) + "\n"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as file:
        file.write(table)
    raw = {f"{cell_name(*cell)}/{function}": values for (cell, function), values in inits.items()}
    with open(os.path.join(out, "inits.json"), "w", encoding="utf-8") as file:
        json.dump({"inits_ms": raw, "unzipped_bytes": {cell_name(*c): s for c, s in size_of.items()}}, file, indent=1)
    print(table)


if __name__ == "__main__":
    main()
