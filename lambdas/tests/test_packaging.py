"""The function folders are what gets zipped: check they hold the handler only,
and that each handler imports the way the build's smoke test imports it —
no configuration but a region, and no network.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["metadata"]["lambda"][
    "functions"
]

# Run in a fresh interpreter: sockets refuse to connect, the handler's folder
# and lambdas/ (standing in for /opt/python) are the only application paths.
IMPORT_CHECK = """
import importlib, socket, sys

def no_network(*args, **kwargs):
    raise RuntimeError("network access at import time")

socket.socket.connect = socket.socket.connect_ex = no_network
socket.getaddrinfo = socket.create_connection = no_network
sys.path[:0] = [sys.argv[1], sys.argv[2]]
module_name, _, function_name = sys.argv[3].rpartition(".")
handler = getattr(importlib.import_module(module_name), function_name)
assert callable(handler), sys.argv[3]
"""


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_folder_holds_only_its_handler(name: str) -> None:
    function = FUNCTIONS[name]
    source = ROOT / function["source"]
    module = function["handler"].rpartition(".")[0]

    entries = {path.name for path in source.iterdir() if path.name != "__pycache__"}

    assert entries == {f"{module}.py"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_imports_without_configuration_or_network(name: str, tmp_path: Path) -> None:
    function = FUNCTIONS[name]
    env = {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "HOME": str(tmp_path),
    }
    layers_dir = ROOT / "lambdas" if function["layers"] else tmp_path
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-B",
            "-c",
            IMPORT_CHECK,
            str(ROOT / function["source"]),
            str(layers_dir),
            function["handler"],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
