"""What every script of xtask/py may use where it runs.

analyze.py, prove.py and bootstrap.py run with the Python of the project's
Lambda runtime, python3.9 the oldest, and nothing installed but the
standard library (bootstrap.py hands over to the runtime's own client).
deployed.py runs in the emulator's virtualenv, with boto3.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1]
# What each script may import beyond the standard library.
THIRD_PARTY = {
    "analyze.py": set(),
    "prove.py": set(),
    "bootstrap.py": {"awslambdaric"},
    # The types_boto3 stubs only for mypy, under TYPE_CHECKING.
    "deployed.py": {
        "boto3",
        "botocore",
        "types_boto3_apigatewayv2",
        "types_boto3_lambda",
        "types_boto3_logs",
    },
}


def test_every_script_is_listed() -> None:
    assert {path.name for path in SCRIPTS.glob("*.py")} == set(THIRD_PARTY)


@pytest.mark.parametrize("name", sorted(THIRD_PARTY))
def test_the_script_is_python_3_9(name: str) -> None:
    source = (SCRIPTS / name).read_text()

    ast.parse(source, filename=name, feature_version=(3, 9))


@pytest.mark.parametrize("name", sorted(THIRD_PARTY))
def test_the_script_imports_the_standard_library_and_its_own_allowance(name: str) -> None:
    tree = ast.parse((SCRIPTS / name).read_text(), filename=name)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.partition(".")[0])

    assert imported - sys.stdlib_module_names <= THIRD_PARTY[name]
