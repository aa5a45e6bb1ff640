"""Starts a Lambda function the way the Python runtime's bootstrap does, for
`cargo xtask smoke` and `cargo xtask invoke`.

Run as `python -I -S -B -c <this file> TASK_ROOT OPT_ROOT RUNTIME_SITE RUNTIME_DIR HANDLER`,
with `AWS_LAMBDA_RUNTIME_API` pointing at the tool's Runtime API. `-I -S`
keep the host's environment and site-packages out, so sys.path is built here
in the runtime's order: the function's code, the layers, the runtime's own
site-packages (boto3), the runtime interface client, then the standard
library. Then AWS's runtime interface client (awslambdaric) takes over: it
imports the handler, reports an init error, or asks for events.
"""

import os
import sys


def main() -> None:
    task_root, opt_root, runtime_site, runtime_dir, handler = sys.argv[1:6]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    entries = [
        task_root,
        os.path.join(opt_root, "python", "lib", version, "site-packages"),
        os.path.join(opt_root, "python"),
    ]
    entries += [entry for entry in (runtime_site, runtime_dir) if entry]
    sys.path[:0] = entries
    os.chdir(task_root)
    from awslambdaric.__main__ import main as run

    run(["awslambdaric", handler])


main()
