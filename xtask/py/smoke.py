"""Imports one Lambda handler the way the Python runtime does, for `cargo xtask smoke`.

Run as `python -I -S -B -c <this file> TASK_ROOT OPT_ROOT RUNTIME_SITE HANDLER PYTHON_VERSION TIMEOUT_S`.
`-I -S` keep the host's environment and site-packages out, so sys.path is
built here in the runtime's order: the function's code, the layers, the
runtime's own site-packages (boto3), then the standard library. Prints one
JSON line on the original stdout; whatever the handler prints goes to stderr.
Runs on every supported runtime (3.9 and newer): no newer syntax.
"""

import importlib
import json
import os
import signal
import sys
import time
import traceback


class ImportTimeout(BaseException):
    """Raised by the alarm: a BaseException so that handler code cannot swallow it."""


def lambda_sys_path(task_root, opt_root, runtime_site):
    """The entries the runtime's bootstrap puts before the standard library."""
    version = "python%d.%d" % sys.version_info[:2]
    entries = [
        task_root,
        os.path.join(opt_root, "python", "lib", version, "site-packages"),
        os.path.join(opt_root, "python"),
    ]
    if runtime_site:
        entries.append(runtime_site)
    return entries


def raised_in(tb):
    """`module line N` of the innermost frame that is not the import machinery or this script."""
    found = None
    for frame, line in traceback.walk_tb(tb):
        name = frame.f_globals.get("__name__", "")
        if name == "__main__" or name.startswith("importlib") or frame.f_code.co_filename.startswith("<frozen"):
            continue
        found = "%s line %d" % (name, line)
    return found


def format_traceback(err):
    """The traceback without the import machinery's frames and this script's."""
    frames = [
        frame for frame in traceback.extract_tb(err.__traceback__)
        if not frame.filename.startswith("<") and frame.filename != importlib.__file__
    ]
    lines = ["Traceback (most recent call last):\n"] + traceback.format_list(frames)
    return "".join(lines + traceback.format_exception_only(type(err), err))


def describe(err):
    if isinstance(err, ModuleNotFoundError):
        return str(err)
    text = str(err)
    return "%s: %s" % (type(err).__name__, text) if text else type(err).__name__


def import_handler(handler, timeout_s):
    result = {"ok": False, "import_ms": None, "error": None, "missing_module": None, "raised_in": None}
    module_name, _, attribute = handler.rpartition(".")
    module_name = module_name.replace("/", ".")

    def on_alarm(signum, frame):
        raise ImportTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout_s)
    started = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
    except ImportTimeout as err:
        result["error"] = "the import did not finish within %d s" % timeout_s
        place = raised_in(err.__traceback__)
        if place:
            result["error"] += "; it was at " + place
        return result
    except BaseException as err:  # noqa: B902 - SystemExit at import is a failure too
        result["import_ms"] = (time.perf_counter() - started) * 1000.0
        result["error"] = describe(err)
        result["raised_in"] = raised_in(err.__traceback__)
        result["traceback"] = format_traceback(err)
        if isinstance(err, ModuleNotFoundError):
            result["missing_module"] = err.name
        return result
    finally:
        signal.alarm(0)
    result["import_ms"] = (time.perf_counter() - started) * 1000.0
    if not hasattr(module, attribute):
        result["error"] = "handler `%s` missing on module `%s`" % (attribute, module_name)
    elif not callable(getattr(module, attribute)):
        result["error"] = "handler `%s` of module `%s` is not callable" % (attribute, module_name)
    else:
        result["ok"] = True
    return result


def main():
    task_root, opt_root, runtime_site, handler, python_version, timeout_s = sys.argv[1:7]
    # Handler output must not corrupt the one JSON line: fd 1 becomes stderr.
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    running = "%d.%d" % sys.version_info[:2]
    if running != python_version:
        result = {"ok": False, "error": "the interpreter is Python %s, the runtime's is %s" % (running, python_version)}
    else:
        sys.path[:0] = lambda_sys_path(task_root, opt_root, runtime_site)
        os.chdir(task_root)
        result = import_handler(handler, int(timeout_s))
        # Paths as Lambda would print them, not the temporary folders'.
        for key in ("error", "traceback"):
            if result.get(key):
                result[key] = result[key].replace(task_root, "/var/task").replace(opt_root, "/opt")
    result["python"] = running
    answer.write(json.dumps(result) + "\n")
    answer.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads the handler started must not keep the process alive.
    os._exit(0)


main()
