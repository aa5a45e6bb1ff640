"""Imports the modules a request names, each in turn, and writes which failed and how.

Run by the runtime's own Python with -I -S, so that nothing of the machine's
site-packages answers for the layer: argv[1] is the request (JSON: "path",
folders relative to this script's folder put first on sys.path; "modules",
dotted names), argv[2] the answer (JSON: module -> "Type: message" for each
failure). Each module's name goes to stderr before its import, so that an
interpreter that dies names the module that killed it.
"""

import importlib
import json
import os
import signal
import sys

# A module whose import waits on something that never comes fails, not the build.
SECONDS_PER_MODULE = 30


def too_slow(signum: int, frame: object) -> None:
    raise TimeoutError(f"its import took more than {SECONDS_PER_MODULE} s")


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    with open(sys.argv[1], encoding="utf-8") as file:
        request = json.load(file)
    sys.path[:0] = [os.path.join(here, folder) for folder in request["path"]]
    failed: dict[str, str] = {}
    signal.signal(signal.SIGALRM, too_slow)
    for name in request["modules"]:
        print(name, file=sys.stderr, flush=True)
        signal.alarm(SECONDS_PER_MODULE)
        try:
            importlib.import_module(name)
        except BaseException as err:  # SystemExit and KeyboardInterrupt from a module too
            message = str(err).replace(here + os.sep, "")
            failed[name] = f"{type(err).__name__}: {message}" if message else type(err).__name__
        finally:
            signal.alarm(0)
    with open(sys.argv[2], "w", encoding="utf-8") as file:
        json.dump(failed, file, sort_keys=True)


if __name__ == "__main__":
    main()
