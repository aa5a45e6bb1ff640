"""prove.py as xtask/src/steps/finish.rs runs it: copied into a layer's install
folder with its request, then `python -I -S -B prove.py prove.json proved.json`;
the answer is the failures by module, and stderr names each module before
its import.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "prove.py"


@dataclass
class Proof:
    returncode: int
    named: list[str]  # the lines of stderr
    failed: dict[str, str] | None  # None: no answer was written


def prove(install: Path, path: list[str], modules: list[str]) -> Proof:
    shutil.copy(SCRIPT, install / "prove.py")
    (install / "prove.json").write_text(json.dumps({"path": path, "modules": modules}))
    answer = install / "proved.json"
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            str(install / "prove.py"),
            str(install / "prove.json"),
            str(answer),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    failed = json.loads(answer.read_text()) if answer.exists() else None
    return Proof(run.returncode, run.stderr.splitlines(), failed)


def layer(install: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = install / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_layer_whose_modules_import_has_no_failure(tmp_path: Path) -> None:
    layer(
        tmp_path,
        {
            "site/pkg/__init__.py": "from pkg.sub import VALUE\n",
            "site/pkg/sub.py": "VALUE = 1\n",
            "site/single.py": "import json\n",
        },
    )
    modules = ["pkg", "pkg.sub", "single"]

    proof = prove(tmp_path, ["site"], modules)

    assert proof == Proof(0, modules, {})


def test_each_failure_is_its_type_and_message_and_the_other_modules_go_on(
    tmp_path: Path,
) -> None:
    layer(
        tmp_path,
        {
            "site/fine.py": "",
            "site/bad_config.py": "raise ValueError('bad config')\n",
            "site/names_its_file.py": "raise RuntimeError(__file__)\n",
            "site/exits.py": "raise SystemExit(3)\n",
            "site/interrupted.py": "raise KeyboardInterrupt\n",
            "site/needs_missing.py": "import not_in_the_layer\n",
            # The alarm that ends an import that waits too long, rung early.
            "site/too_slow.py": (
                "import os, signal, time\nos.kill(os.getpid(), signal.SIGALRM)\ntime.sleep(5)\n"
            ),
            "site/after.py": "",
        },
    )
    modules = [
        "fine",
        "bad_config",
        "names_its_file",
        "exits",
        "interrupted",
        "needs_missing",
        "too_slow",
        "absent",
        "after",
    ]

    proof = prove(tmp_path, ["site"], modules)

    assert proof.returncode == 0
    assert proof.named == modules
    assert proof.failed == {
        "bad_config": "ValueError: bad config",
        # The install folder is left out of messages: they name the layer's own paths.
        "names_its_file": "RuntimeError: site/names_its_file.py",
        "exits": "SystemExit: 3",
        "interrupted": "KeyboardInterrupt",
        "needs_missing": "ModuleNotFoundError: No module named 'not_in_the_layer'",
        "too_slow": "TimeoutError: its import took more than 30 s",
        "absent": "ModuleNotFoundError: No module named 'absent'",
    }


def test_the_request_folders_come_first_in_their_order(tmp_path: Path) -> None:
    layer(
        tmp_path,
        {
            "site/which.py": "raise RuntimeError('from site')\n",
            "python/which.py": "raise RuntimeError('from python')\n",
            "python/only_here.py": "",
        },
    )

    proof = prove(tmp_path, ["site", "python"], ["which", "only_here"])

    assert proof.failed == {"which": "RuntimeError: from site"}


def test_the_machine_site_packages_answer_for_nothing(tmp_path: Path) -> None:
    layer(tmp_path, {"site/mine.py": ""})

    # pytest is installed in the Python that runs the proof (it runs this test).
    proof = prove(tmp_path, ["site"], ["mine", "pytest"])

    assert proof.failed == {"pytest": "ModuleNotFoundError: No module named 'pytest'"}


def test_an_interpreter_that_dies_names_the_module_that_killed_it(tmp_path: Path) -> None:
    layer(
        tmp_path,
        {
            "site/fine.py": "",
            "site/dies.py": "import os\nos._exit(7)\n",
            "site/never.py": "",
        },
    )

    proof = prove(tmp_path, ["site"], ["fine", "dies", "never"])

    assert proof.returncode == 7
    assert proof.failed is None
    assert proof.named == ["fine", "dies"]
