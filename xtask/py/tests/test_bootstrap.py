"""bootstrap.py as xtask/src/steps/launch.rs runs it:
`python -I -S -B -c <script> TASK_ROOT OPT_ROOT RUNTIME_SITE RUNTIME_DIR HANDLER`.

The runtime interface client it hands over to is a stand-in here, in the
RUNTIME_DIR as the real one is: it imports the handler as awslambdaric
does and prints what it saw, so the tests see the function's world.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "bootstrap.py"
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"

CLIENT_MAIN = """\
import importlib, json, os, sys

def main(args):
    module, _, name = args[1].rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    seen = {"args": args, "path": sys.path, "cwd": os.getcwd(), "answer": handler({}, None)}
    print(json.dumps(seen))
"""

HANDLER = """\
import both, from_layer_site, from_layer_python, from_runtime_site

def handler(event, context):
    return {
        module.__name__: module.WHERE
        for module in (both, from_layer_site, from_layer_python, from_runtime_site)
    }
"""


def files(root: Path, contents: dict[str, str]) -> None:
    for name, text in contents.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def where(place: str) -> str:
    return f"WHERE = {place!r}\n"


def function(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A function, a layer, the runtime's site-packages and its client, each module
    of the handler in the places that do not win as well as in the one that does."""
    task, opt, site, client = (tmp_path / name for name in ("task", "opt", "site", "client"))
    layer_site = f"python/lib/{VERSION}/site-packages"
    files(task, {"app.py": HANDLER, "both.py": where("task")})
    files(
        opt,
        {
            f"{layer_site}/both.py": where("layer site-packages"),
            f"{layer_site}/from_layer_site.py": where("layer site-packages"),
            "python/from_layer_site.py": where("layer python"),
            "python/from_layer_python.py": where("layer python"),
        },
    )
    files(
        site,
        {
            "from_runtime_site.py": where("runtime site"),
            "from_layer_python.py": where("runtime site"),
        },
    )
    files(
        client,
        {
            "awslambdaric/__init__.py": "",
            "awslambdaric/__main__.py": CLIENT_MAIN,
            "from_runtime_site.py": where("client"),
        },
    )
    return task, opt, site, client


def bootstrap(*args: str) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", SCRIPT.read_text(), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    seen: dict[str, Any] = json.loads(run.stdout)
    return seen


def test_the_function_sees_the_runtime_s_path_in_its_order(tmp_path: Path) -> None:
    task, opt, site, client = function(tmp_path)

    seen = bootstrap(str(task), str(opt), str(site), str(client), "app.handler")

    assert seen["args"] == ["awslambdaric", "app.handler"]
    assert seen["cwd"] == str(task)
    assert seen["path"][:5] == [
        str(task),
        str(opt / "python" / "lib" / VERSION / "site-packages"),
        str(opt / "python"),
        str(site),
        str(client),
    ]
    assert seen["answer"] == {
        "both": "task",
        "from_layer_site": "layer site-packages",
        "from_layer_python": "layer python",
        "from_runtime_site": "runtime site",
    }
    # Then the standard library only: nothing of the machine's site-packages.
    assert not [entry for entry in seen["path"][5:] if "site-packages" in entry]


def test_without_the_runtime_s_site_packages_the_client_follows_the_layers(
    tmp_path: Path,
) -> None:
    task, opt, site, client = function(tmp_path)

    seen = bootstrap(str(task), str(opt), "", str(client), "app.handler")

    assert seen["path"][:4] == [
        str(task),
        str(opt / "python" / "lib" / VERSION / "site-packages"),
        str(opt / "python"),
        str(client),
    ]
    assert str(site) not in seen["path"]
    assert seen["answer"]["from_runtime_site"] == "client"
