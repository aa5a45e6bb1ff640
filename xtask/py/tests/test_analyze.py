"""analyze.py as xtask/src/analyze.rs runs it: `python -I -c <script>`, a JSON
request on stdin, the JSON answer on stdout, over source files of its own.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "analyze.py"


def analyze(request: dict[str, Any], cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-I", "-c", SCRIPT.read_text()],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text)


def test_a_handler_is_defined_by_any_top_level_binding(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "by_def.py": "def lambda_handler(event, context):\n    return 1\n",
            "by_async_def.py": "async def lambda_handler(event, context):\n    return 1\n",
            "by_class.py": "class lambda_handler:\n    pass\n",
            "by_assignment.py": "def run(e, c):\n    pass\n\nlambda_handler = run\n",
            "by_import.py": "from impl import run as lambda_handler\n",
            "in_a_branch.py": "if True:\n    def lambda_handler(event, context):\n        pass\n",
            "nested.py": "def outer():\n    def lambda_handler(event, context):\n        pass\n",
            "other_name.py": "def handler(event, context):\n    pass\n# lambda_handler\n",
        },
    )
    names = [
        "by_def",
        "by_async_def",
        "by_class",
        "by_assignment",
        "by_import",
        "in_a_branch",
        "nested",
        "other_name",
    ]
    request = {
        "handlers": [
            {"key": name, "file": str(tmp_path / f"{name}.py"), "name": "lambda_handler"}
            for name in names
        ]
    }

    handlers = analyze(request, tmp_path)["handlers"]

    missing = {"ok": False, "error": "defines no top-level `lambda_handler`"}
    assert handlers == {
        "by_def": {"ok": True},
        "by_async_def": {"ok": True},
        "by_class": {"ok": True},
        "by_assignment": {"ok": True},
        "by_import": {"ok": True},
        "in_a_branch": missing,
        "nested": missing,
        "other_name": missing,
    }


def test_a_handler_file_that_does_not_parse_or_exist_is_not_ok(tmp_path: Path) -> None:
    write(tmp_path, {"broken.py": "x = 1\ndef lambda_handler(:\n"})
    request = {
        "handlers": [
            {"key": "broken", "file": str(tmp_path / "broken.py"), "name": "lambda_handler"},
            {"key": "gone", "file": str(tmp_path / "gone.py"), "name": "lambda_handler"},
        ]
    }

    handlers = analyze(request, tmp_path)["handlers"]

    assert handlers["broken"]["ok"] is False
    assert handlers["broken"]["error"].startswith("syntax error at line 2: ")
    assert handlers["gone"]["ok"] is False
    assert "No such file" in handlers["gone"]["error"]


SOURCE_WITH_IMPORTS = """\
import os, json as j
from . import sibling
from ..pkg.mod import a, b as c
try:
    import fast
except ImportError:
    fast = None
try:
    from speedups import x
except (ValueError, ModuleNotFoundError):
    pass
try:
    import strict
except ValueError:
    pass
try:
    import anything
except:
    pass
def later():
    import inside
"""


def test_imports_name_module_level_line_and_whether_a_failure_is_caught(tmp_path: Path) -> None:
    write(tmp_path, {"mod.py": SOURCE_WITH_IMPORTS})

    modules = analyze({"modules": [str(tmp_path / "mod.py")]}, tmp_path)["modules"]

    def plain(module: str, line: int, guarded: bool = False) -> dict[str, Any]:
        return {"module": module, "level": 0, "line": line, "guarded": guarded}

    assert modules == {
        str(tmp_path / "mod.py"): {
            "imports": [
                plain("os", 1),
                plain("json", 1),
                {"module": "", "level": 1, "line": 2, "guarded": False, "names": ["sibling"]},
                {"module": "pkg.mod", "level": 2, "line": 3, "guarded": False, "names": ["a", "b"]},
                plain("fast", 5, guarded=True),
                {"module": "speedups", "level": 0, "line": 9, "guarded": True, "names": ["x"]},
                plain("strict", 13),
                plain("anything", 17, guarded=True),
                plain("inside", 21),
            ]
        }
    }


def test_a_module_that_does_not_parse_or_exist_has_an_error_and_the_others_are_read(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"good.py": "import os\n", "bad.py": "import os\nimport\n"})
    paths = [str(tmp_path / name) for name in ("good.py", "bad.py", "gone.py")]

    modules = analyze({"modules": paths}, tmp_path)["modules"]

    good, bad, gone = (modules[path] for path in paths)
    assert good == {"imports": [{"module": "os", "level": 0, "line": 1, "guarded": False}]}
    assert set(bad) == {"error"}
    assert bad["error"].startswith("syntax error at line 2: ")
    assert set(gone) == {"error"}
    assert "No such file" in gone["error"]


def test_an_empty_request_gets_the_standard_library_and_the_cache_tag(tmp_path: Path) -> None:
    answer = analyze({}, tmp_path)

    assert answer["handlers"] == {}
    assert answer["modules"] == {}
    assert answer["compiled"] == {}
    assert answer["cache_tag"] == sys.implementation.cache_tag
    assert answer["stdlib"] == sorted(sys.stdlib_module_names)
    assert {"os", "json", "asyncio", "sys"} <= set(answer["stdlib"])
    assert not {"boto3", "pytest", "site-packages"} & set(answer["stdlib"])


def test_compiled_bytecode_is_a_checked_pyc_that_python_imports(tmp_path: Path) -> None:
    source = "def fail():\n    raise RuntimeError('from the compiled module')\n"
    write(tmp_path, {"mod.py": source, "broken.py": "def (\n"})
    request = {
        "compile": [
            {"key": "mod", "file": str(tmp_path / "mod.py"), "filename": "/var/task/mod.py"},
            {"key": "broken", "file": str(tmp_path / "broken.py"), "filename": "broken.py"},
        ]
    }

    answer = analyze(request, tmp_path)

    assert answer["compiled"]["broken"] is None
    pyc = bytes.fromhex(answer["compiled"]["mod"])
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-based, checked
    assert pyc[8:16] == importlib.util.source_hash(source.encode())
    assert marshal.loads(pyc[16:]).co_filename == "/var/task/mod.py"
    # The same source gives the same bytes (they are part of what the build keys).
    assert analyze(request, tmp_path)["compiled"] == answer["compiled"]

    # Beside its source, Python takes it for mod.py's bytecode while the
    # source matches its hash, and compiles the source once it does not.
    cached = tmp_path / "__pycache__" / f"mod.{answer['cache_tag']}.pyc"
    cached.parent.mkdir()
    cached.write_bytes(pyc)
    assert f"code object from '{cached}'" in import_verbosely("mod", tmp_path)
    (tmp_path / "mod.py").write_text(source.replace("compiled", "edited"))
    assert f"code object from '{cached}'" not in import_verbosely("mod", tmp_path)

    # In place of its source (sourceless), it runs as the module, and the
    # traceback shows the filename it was compiled with.
    sourceless = tmp_path / "sourceless"
    sourceless.mkdir()
    (sourceless / "mod.pyc").write_bytes(pyc)
    run = subprocess.run(
        [sys.executable, "-B", "-c", "import mod; mod.fail()"],
        capture_output=True,
        text=True,
        cwd=sourceless,
        timeout=60,
    )
    assert run.returncode == 1
    assert 'File "/var/task/mod.py", line 2, in fail' in run.stderr
    assert run.stderr.endswith("RuntimeError: from the compiled module\n")


def import_verbosely(module: str, cwd: Path) -> str:
    """What ``python -v`` says while importing ``module`` from ``cwd``."""
    run = subprocess.run(
        [sys.executable, "-B", "-v", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stderr
