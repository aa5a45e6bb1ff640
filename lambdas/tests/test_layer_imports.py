"""Each function imports exactly what its layers (Cargo.toml) provide.

A module that a function imports but none of its layers ships is an
ImportError on the first invocation in AWS, which no local test would notice
(the test venv has everything). A layer that a function does not use only
costs size and cold-start time. This test reads the functions' layers from the
build configuration and the imports from the source, following ``shared``
imports into the shared modules they reach, imports inside functions included.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"
SHARED = LAMBDAS / "shared"

# The top-level modules each layer puts on the path.
LAYER_MODULES: dict[str, set[str]] = {
    "core": {"requests"},
    "jwt": {"jwt"},
    "sms": {"twilio"},
    "shared": set(),  # `shared` itself is the application's own package
}
# Provided by the Lambda runtime: allowed everywhere, required nowhere.
RUNTIME_MODULES = {"boto3", "botocore"}
# Layers a function may carry without importing from them, and why.
# Layers a function may carry without importing from them. Empty: the
# authorizer fetches its JWKS through jwt.PyJWKClient (urllib), so it attaches
# only "jwt" and "shared" (check-limits found "core" unused there).
MAY_BE_UNUSED: dict[str, set[str]] = {}


def functions() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "Cargo.toml").read_text())
    return config["workspace"]["metadata"]["lambda"]["functions"]


def shared_module_path(dotted: str) -> Path | None:
    """The file of a `shared` module or package, or None if ``dotted`` is not one."""
    relative = Path(*dotted.split(".")[1:])
    for candidate in (SHARED / relative / "__init__.py", (SHARED / relative).with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imports_of(path: Path) -> tuple[set[str], set[Path]]:
    """Top-level modules ``path`` imports from outside `shared`, and the shared files it imports."""
    external: set[str] = set()
    shared_files: set[Path] = set()
    package = "shared" if path.is_relative_to(SHARED) else ""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: only meaningful inside the shared package
                assert package, f"relative import in {path}"
                base = ".".join(filter(None, [package, base]))
            # `from shared import db_utils` imports the submodule db_utils.
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "shared":
                module = shared_module_path(name)
                if module:
                    shared_files.add(module)
            else:
                external.add(name.split(".")[0])
    return external, shared_files


def third_party_imports(function_dir: Path) -> tuple[set[str], set[Path]]:
    """Third-party modules the function's code reaches, and the shared files it reaches."""
    pending = set(function_dir.glob("*.py"))
    seen: set[Path] = set()
    external: set[str] = set()
    while pending:
        path = pending.pop()
        seen.add(path)
        names, shared_files = imports_of(path)
        external |= names
        # Importing shared.x runs shared/__init__.py first.
        if shared_files:
            shared_files.add(SHARED / "__init__.py")
        pending |= shared_files - seen
    return external - set(sys.stdlib_module_names) - {"__future__"}, seen


FUNCTIONS = functions()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_imports_match_layers(name: str) -> None:
    function = FUNCTIONS[name]
    layers = function["layers"]
    unknown = set(layers) - set(LAYER_MODULES)
    assert not unknown, f"{name}: no module table for layers {unknown}"
    provided = set().union(*(LAYER_MODULES[layer] for layer in layers))
    optional = set().union(
        *(LAYER_MODULES[layer] for layer in MAY_BE_UNUSED.get(name, set()) & set(layers))
    )

    imported, _ = third_party_imports(ROOT / function["source"])
    imported -= RUNTIME_MODULES

    assert imported <= provided, (
        f"{name} imports {sorted(imported - provided)} that none of {layers} provides"
    )
    assert provided - optional <= imported, (
        f"{name} carries layers for {sorted(provided - imported)} it never imports"
    )


def uses_shared(files: set[Path]) -> bool:
    return any(path.is_relative_to(SHARED) for path in files)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_shared_layer_exactly_when_shared_is_imported(name: str) -> None:
    _, files = third_party_imports(ROOT / FUNCTIONS[name]["source"])

    assert uses_shared(files) == ("shared" in FUNCTIONS[name]["layers"])


def test_expected_imports_per_function() -> None:
    """The concrete outcome, so that a change to Cargo.toml or the code shows up here."""
    reached = {name: third_party_imports(ROOT / f["source"]) for name, f in FUNCTIONS.items()}

    assert {name: external - RUNTIME_MODULES for name, (external, _) in reached.items()} == {
        "sms": {"requests", "twilio"},
        "auth": {"requests", "jwt"},
        "authorizer": {"jwt"},
        "users": set(),
        "cors": set(),
    }
    assert {name for name, (_, files) in reached.items() if uses_shared(files)} == {
        "sms",
        "auth",
        "authorizer",
        "users",
    }
    assert FUNCTIONS["cors"]["layers"] == []


def test_shared_uses_only_stdlib_and_boto3() -> None:
    for path in SHARED.glob("*.py"):
        external, _ = imports_of(path)
        assert external - set(sys.stdlib_module_names) - {"__future__"} <= RUNTIME_MODULES, path
