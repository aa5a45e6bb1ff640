"""Static facts about Python sources, for `cargo xtask` (package and check-limits).

Reads a JSON request on stdin and prints a JSON answer: whether each handler
module defines its handler, and what each module imports. Uses the
interpreter's own parser (`ast`), never regular expressions.

Runs with the runtime's Python, 3.9 the oldest, and imports nothing but what
it needs (not even `typing`): JSON values are typed `object`.
"""

from __future__ import annotations

import ast
import json
import sys


def parse(path: str) -> ast.Module:
    with open(path, "rb") as source:
        return ast.parse(source.read(), filename=path)


def defines(tree: ast.Module, name: str) -> bool:
    """True when the module binds `name` at top level to something callable-looking."""
    for node in tree.body:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.name == name
        ):
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name.split(".")[0]) == name for alias in node.names
        ):
            return True
    return False


# An `except` of one of these (or a bare one) catches a failed import.
CATCHES_IMPORT_ERROR = {"ImportError", "ModuleNotFoundError", "Exception"}


def guarded_by_import_error(parents: list[ast.AST]) -> bool:
    for parent in parents:
        if isinstance(parent, ast.Try):
            for handler in parent.handlers:
                names: list[str] = []
                if isinstance(handler.type, ast.Name):
                    names = [handler.type.id]
                elif isinstance(handler.type, ast.Tuple):
                    names = [elt.id for elt in handler.type.elts if isinstance(elt, ast.Name)]
                if handler.type is None or CATCHES_IMPORT_ERROR & set(names):
                    return True
    return False


def imports(tree: ast.Module) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []

    def visit(node: ast.AST, parents: list[ast.AST]) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(
                    {
                        "module": alias.name,
                        "level": 0,
                        "line": node.lineno,
                        "guarded": guarded_by_import_error(parents),
                    }
                )
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            guarded = guarded_by_import_error(parents)
            found.append(
                {
                    "module": base,
                    "level": node.level,
                    "line": node.lineno,
                    "guarded": guarded,
                    "names": [alias.name for alias in node.names],
                }
            )
        for child in ast.iter_child_nodes(node):
            visit(child, [*parents, node])

    visit(tree, [])
    return found


def stdlib_names() -> list[str]:
    """The standard library's top-level module names.

    `sys.stdlib_module_names` is there from Python 3.10; on 3.9 the names are
    the built-in modules and what the standard library's folders hold.
    """
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return sorted(names)
    import os
    import sysconfig

    found = set(sys.builtin_module_names)
    stdlib = sysconfig.get_paths()["stdlib"]
    for folder in (stdlib, os.path.join(stdlib, "lib-dynload")):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(folder, entry)
            if entry.endswith((".py", ".so")):
                found.add(entry.split(".")[0])
            elif os.path.isfile(os.path.join(path, "__init__.py")):
                found.add(entry)
    found.discard("site-packages")
    return sorted(name for name in found if name.isidentifier())


def main() -> None:
    request = json.load(sys.stdin)
    stdlib = stdlib_names()
    handlers: dict[str, dict[str, object]] = {}
    for handler in request.get("handlers", []):
        try:
            tree = parse(handler["file"])
            if defines(tree, handler["name"]):
                handlers[handler["key"]] = {"ok": True}
            else:
                handlers[handler["key"]] = {
                    "ok": False,
                    "error": f"defines no top-level `{handler['name']}`",
                }
        except SyntaxError as err:
            handlers[handler["key"]] = {
                "ok": False,
                "error": f"syntax error at line {err.lineno}: {err.msg}",
            }
        except OSError as err:
            handlers[handler["key"]] = {"ok": False, "error": str(err)}
    modules: dict[str, dict[str, object]] = {}
    for path in request.get("modules", []):
        try:
            modules[path] = {"imports": imports(parse(path))}
        except SyntaxError as err:
            modules[path] = {"error": f"syntax error at line {err.lineno}: {err.msg}"}
        except OSError as err:
            modules[path] = {"error": str(err)}
    compiled: dict[str, str | None] = {}
    for job in request.get("compile", []):
        compiled[job["key"]] = compile_checked(job["file"], job["filename"])
    answer = {
        "handlers": handlers,
        "modules": modules,
        "stdlib": stdlib,
        "compiled": compiled,
        "cache_tag": sys.implementation.cache_tag,
    }
    json.dump(answer, sys.stdout)


def compile_checked(path: str, filename: str) -> str | None:
    """Hash-based bytecode checked against its source (PEP 552), with `filename` as
    the path tracebacks show; hex, or None for a file that does not compile."""
    import importlib.util
    import marshal

    with open(path, "rb") as file:
        source = file.read()
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    # The header of py_compile's CHECKED_HASH mode: magic, flags (checked), hash.
    data = bytearray(importlib.util.MAGIC_NUMBER)
    data.extend((0b11).to_bytes(4, "little"))
    data.extend(importlib.util.source_hash(source))
    data.extend(marshal.dumps(code))
    return data.hex()


main()
