//! One module per subcommand, each exposing `run` over its typed
//! arguments; nothing imports a command. `COMMANDS` declares them all,
//! once: parsing, `--help`, "did you mean" and `main`'s dispatch all read
//! it. `graph_run` is what the commands that run the build graph share.

use crate::cli::flags::{
    ALL, ARCH, BUILDER, CHECK, DENY, DOCKER, ENV, EVENT, FAKES, FORCE, IMAGE, JOBS, JSON, LAYER, MAX_SIZE,
    OPEN, PORT, RUNNER, SAVE_EVENTS, UPGRADE, UPGRADE_PACKAGE, VERBOSE, WATCH,
};
use crate::cli::Command;

pub mod audit;
pub mod build;
pub mod build_layers;
pub mod check_limits;
pub mod ci;
pub mod graph_run;
pub mod invoke;
pub mod lock;
pub mod package;
pub mod prune_cache;
pub mod push;
pub mod report;
pub mod serve;
pub mod smoke;
#[cfg(test)]
mod tests;

/// Every subcommand, in the order `--help` lists them.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "build-layers",
        arguments: "[LAYER...]",
        summary: "install each dependency profile into dist/layers/<name>.zip",
        usage: "cargo xtask build-layers [OPTIONS] [LAYER...]",
        about: "Installs every dependency profile (a layer with `requirements`) for the configured
runtime and architecture, in parallel, and writes dist/layers/<name>.zip with `python/`
at its root. Runtime-provided distributions (`exclude`, default boto3, botocore,
s3transfer, jmespath) are left out even when they arrive transitively.

Builders: `container` runs the installer in the Lambda build image with docker or
podman; `host` cross-installs manylinux wheels the runtime's glibc can load;
`auto` uses the container when an engine answers and the image is there (it never
pulls), else host. Results are cached under target/lambda by a key of every input
(the requirements and every file they include, the installer and its version, the
image id, the installer's environment variables); a hit does no work.",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &ARCH, &FORCE, &JOBS],
        takes_names: true,
        run: |given| build_layers::run(given.into()),
    },
    Command {
        name: "package",
        arguments: "[FUNCTION...]",
        summary: "zip source layers (shared code) and thin function ZIPs",
        usage: "cargo xtask package [OPTIONS] [FUNCTION...]",
        about: "Zips every source layer (application code such as `shared`) as python/<package>/...
and one thin ZIP per function holding only its source folder. A function with
`bundle = true` gets its layers' content merged into its ZIP instead.
Unchanged inputs are not re-zipped.",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &ARCH, &FORCE, &JOBS],
        takes_names: true,
        run: |given| package::run(given.into()),
    },
    Command {
        name: "check-limits",
        arguments: "",
        summary: "check every function with its layers against AWS's limits,\nthe budgets and its imports",
        usage: "cargo xtask check-limits [OPTIONS]",
        about: "Checks every function together with its layers (built first when stale): unzipped
size against 262,144,000 bytes and the budgets, zipped size against direct upload,
the number of layers, files two layers both ship, and the imports of its code
against the distributions its layers provide (missing, unused, runtime-provided).
Verdicts are cached by the keys of what they check.",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &ARCH, &FORCE, &JOBS],
        takes_names: false,
        run: |given| check_limits::run(given.into()),
    },
    Command {
        name: "smoke",
        arguments: "[FUNCTION...]",
        summary: "start each function as Lambda does, under AWS's runtime\ninterface client, and time its init",
        usage: "cargo xtask smoke [OPTIONS] [FUNCTION...]",
        about: "Runs each function's init phase as Lambda does: its ZIP read-only at a /var/task,
its layers in order at an /opt, an unprivileged user (uid 993 when run as root),
the runtime's Python (in the build image with the container builder) with
Lambda's sys.path and variables, under AWS's runtime interface client
(awslambdaric) against a Runtime API on 127.0.0.1. Reports Lambda's own error
(Runtime.ImportModuleError, Runtime.HandlerNotFound, Runtime.UserCodeSyntaxError…)
with the layer that would provide a missing module, and the init duration
against `import_budget` (default 3 s; over it, the fastest of 3 counts).
What it runs is brought up to date first; a verdict is cached by the keys
of the function's ZIP, its layers in order and the interpreter.
The runtime's boto3 and awslambdaric are installed once into runtime/ of the cache
every repository of the user shares (see prune-cache), beside the layers (or taken from XTASK_RUNTIME_SITE=DIR and XTASK_RUNTIME_CLIENT=DIR).
--jobs defaults to at most 4 here, to keep timings honest.",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &RUNNER, &ARCH, &FORCE, &JOBS],
        takes_names: true,
        run: |given| smoke::run(given.into()),
    },
    Command {
        name: "invoke",
        arguments: "FUNCTION | --all",
        summary: "run a packaged function under AWS's runtime interface\nclient and send it an event, or every sample event",
        usage: "cargo xtask invoke [OPTIONS] FUNCTION [--event FILE|-] | --all",
        about: "Runs a packaged function (everything built first) as `smoke` starts it, sends
it one event and prints the response JSON on stdout, the function's logs on
stderr, and Lambda's REPORT line (Duration, Max Memory Used, Init Duration).
A handler still running at the function's `timeout` (default 3 s) is stopped:
\"Task timed out after N.00 seconds\".
--all sends every sample event, <events>/<function>/<name>.json (`events`,
default lambdas/events), and checks the status its expect.json names (the
policy effect for an authorizer), against the local fakes of <events>/fakes.py
(run with the Python of lambdas/requirements-dev.txt; it prints the functions'
variables and serves until its stdin closes).
Exit codes: 0 answered, 1 a function error, an init error, a timeout or an
unexpected status, 2 bad usage (a bad event file is named with its line) or no
way to run the runtime here.",
        flags: &[
            &VERBOSE, &BUILDER, &IMAGE, &RUNNER, &ARCH, &FORCE, &JOBS, &ALL, &EVENT, &ENV, &LAYER,
        ],
        takes_names: true,
        run: |given| invoke::run(given.into()),
    },
    Command {
        name: "serve",
        arguments: "[FUNCTION...]",
        summary: "the HTTP API of Cargo.toml on 127.0.0.1, as API Gateway\nanswers it, with warm functions (and reload on save)",
        usage: "cargo xtask serve [OPTIONS] [FUNCTION...]",
        about: "Builds everything (as `build`), then answers the routes of Cargo.toml (each
function's `routes`, the `[api]` authorizer and payload format) on 127.0.0.1 as an
API Gateway HTTP API does: route selection (exact path, then parameters, then
greedy, then $default), events in payload format 1.0 or 2.0, the Lambda REQUEST
authorizer (401/403, its context passed on, answers cached by identity source),
responses mapped back, and API Gateway's own errors: 404 no route, 413 over 10 MB,
502 a function error or malformed response, 503 past min(30 s, the function's
timeout), 429 past `reserved_concurrency`.
Functions run as `invoke` runs them (AWS's runtime interface client, read-only
code, unprivileged user, memory and variables from the manifest) but warm: an
environment is reused across requests, another is started for a concurrent one;
each log line is prefixed with the function and request id. FUNCTION... serves
only those functions' routes (the authorizer too when one of them needs it).
--watch rebuilds through the graph on every saved change to a handler, shared
code, a requirements file, a lock or Cargo.toml, and replaces the environments of
exactly the functions whose build changed; a failed build keeps the last good one
serving and prints why. --fakes starts <events>/fakes.py, as `invoke --all` does.
Stops on Ctrl-C. Exit codes: 1 the first build failed, 2 bad usage.",
        flags: &[
            &VERBOSE, &BUILDER, &IMAGE, &RUNNER, &ARCH, &FORCE, &JOBS, &PORT, &WATCH, &FAKES, &ENV,
            &SAVE_EVENTS,
        ],
        takes_names: true,
        run: |given| serve::run(given.into()),
    },
    Command {
        name: "lock",
        arguments: "[PROFILE...]",
        summary: "resolve each dependency profile once into a lock with\nhashes, beside its requirements; build-layers installs it",
        usage: "cargo xtask lock [OPTIONS] [PROFILE...]",
        about: "Resolves each dependency profile (default: all) once, with uv, for the runtime and
architecture: binary wheels for the runtime's manylinux tags, every distribution
pinned with the sha256 of each of its files, into
<requirements folder>/<name>.<runtime>-<architecture>.lock (a requirements file
with --hash, which pip and uv both install; the header records the sha256 of the
requirements it was resolved from). A lock keeps its pins until --upgrade or
--upgrade-package NAME. build-layers installs a profile that has a lock from it
as it is (--no-deps --require-hashes), on the host and in the build image alike,
and refuses a lock older than its requirements (exit 2, naming this command).
--check writes nothing and fails when a lock is missing or stale: for CI.",
        flags: &[&ARCH, &CHECK, &UPGRADE, &UPGRADE_PACKAGE],
        takes_names: true,
        run: |given| lock::run(given.into()),
    },
    Command {
        name: "build",
        arguments: "",
        summary: "all of the above in order: the main job",
        usage: "cargo xtask build [OPTIONS]",
        about: "Brings everything up to date: dependency layers, source layers, function ZIPs,
dist/manifest.json (written whole, only when every product is built), the
check and smoke test of every function, and dist/report.html. Only stale steps
run; dist/ holds exactly what the graph produces. An image function
(`package = \"image\"`) gets its OCI image layout under dist/images/<function>,
on its base pulled by digest (a tag is pinned in images.lock by `lock`);
--docker loads each into the container engine.",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &RUNNER, &ARCH, &FORCE, &JOBS, &DOCKER],
        takes_names: false,
        run: |given| build::run(given.into()),
    },
    Command {
        name: "push",
        arguments: "[FUNCTION...]",
        summary: "upload each image function's image to its image_repository",
        usage: "cargo xtask push [OPTIONS] [FUNCTION...]",
        about: "Brings each image function's image (`package = \"image\"`; default: every one)
up to date, as `build` makes it, and uploads it to `image_repository`/<function>
through the OCI distribution API: blobs the registry has are skipped (HEAD), the
others uploaded in chunks that resume after a failed one, then the manifest by
its digest. Amazon ECR (`<account>.dkr.ecr.<region>.amazonaws.com`) is signed in
with the AWS credentials the remote cache reads (ECR's GetAuthorizationToken);
any other registry anonymously, with XTASK_REGISTRY_USERNAME and
XTASK_REGISTRY_PASSWORD (basic) or XTASK_REGISTRY_TOKEN (bearer). A registry on
127.0.0.1 or localhost is spoken to over plain HTTP, any other only over HTTPS.
Prints each pushed reference, `<repository>@sha256:…`, on stdout, and records it
in dist/manifest.json as the function's `image.uri`, which Terraform deploys.
Exit codes: 1 a push failed (nothing is recorded for it), 2 bad usage.",
        flags: &[&VERBOSE, &BUILDER, &IMAGE, &ARCH, &FORCE, &JOBS],
        takes_names: true,
        run: |given| push::run(given.into()),
    },
    Command {
        name: "audit",
        arguments: "[FUNCTION...]",
        summary: "check every distribution each function ships against OSV's\nadvisories for PyPI",
        usage: "cargo xtask audit [OPTIONS] [FUNCTION...]",
        about: "Brings what the functions ship up to date (as check-limits does), then checks every
distribution of every layer each function holds (and the runtime's boto3 where it
ships none of its own) against OSV's advisories for PyPI: from a local OSV export
named by XTASK_OSV_DB (a folder of OSV JSON records, or OSV's PyPI all.zip), else
from OSV's API (XTASK_OSV_API, default https://api.osv.dev). Shows each finding's
id and aliases, severity, distribution and version, functions and layers, and the
versions that fix it; writes dist/audit.json, which dist/report.html shows.
--deny SEVERITY (or `deny` in [workspace.metadata.lambda.audit]) fails on a
finding at or above it; `ignore` there lets one pass until its date, for a reason.
Exit codes: 0 no finding fails, 1 one does, 2 bad usage, configuration or export,
3 skipped: no advisory database could be asked (never a pass).",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &ARCH, &FORCE, &JOBS, &DENY],
        takes_names: true,
        run: |given| audit::run(given.into()),
    },
    Command {
        name: "report",
        arguments: "[--open]",
        summary: "write dist/report.html again from what is built (and open it)",
        usage: "cargo xtask report [OPTIONS]",
        about: "Writes dist/report.html again: one self-contained page with, for each function,
a treemap of its unzipped bytes (its code, each layer in order, their distributions
and largest files) under a scale with AWS's 262,144,000-byte limit and the budget,
unused distributions, files two layers both ship, what the runtime provides, the
init time, the same figures as a table, and what changed since the previous build.
Whatever it shows is brought up to date first, as `build` does (every other
command also rewrites the report whenever dist/manifest.json is whole). Prints its
path, or opens it with --open. Exit 1 only when it cannot be written (a step
failed); a function over a limit is shown, not an error here.",
        flags: &[&JSON, &VERBOSE, &BUILDER, &IMAGE, &RUNNER, &ARCH, &FORCE, &JOBS, &OPEN],
        takes_names: false,
        run: |given| report::run(given.into()),
    },
    Command {
        name: "prune-cache",
        arguments: "",
        summary: "prune the finished distributions all your repositories\nshare to the cache's bound, those used longest ago first",
        usage: "cargo xtask prune-cache [OPTIONS] [--max-size SIZE]",
        about: "Prunes the cache every repository of the user shares, which holds finished
distributions (each installed distribution of a dependency layer after slimming
and bytecode, keyed by its files, the compiling Python and the rules): the
entries used longest ago go first, until what is left holds at most the bound.
Builds prune it too, after a run that added to it.
The cache is $XTASK_CACHE_DIR (an absolute path), else $XDG_CACHE_HOME/xtask-lambda,
else ~/.cache/xtask-lambda; with none of them nothing is cached. The bound is
--max-size, else XTASK_CACHE_MAX, else 2 GiB (\"500 MiB\", \"1 GB\", bytes;
0 empties the cache). Needs no repository. Prints the cache's folder, what was
removed and what is kept. Exit codes: 0 pruned (or no cache), 1 an entry could
not be removed, 2 a bad size or a relative XTASK_CACHE_DIR.",
        flags: &[&MAX_SIZE],
        takes_names: false,
        run: |given| prune_cache::run(given.into()),
    },
    Command {
        name: "ci",
        arguments: "",
        summary: "everything CI checks: fmt, clippy, tests, pytest, terraform",
        usage: "cargo xtask ci [OPTIONS]",
        about: "Runs what CI checks: cargo fmt --check, cargo clippy -D warnings, cargo test,
the Python test suite in a virtualenv, an end-to-end build of the example
application, its dist/report.html loaded in headless Chromium (every total
checked against check-limits, a screenshot under target/lambda/report/),
invoke --all, the Terraform tests and an apply of terraform/envs/dev against
moto. A stage this machine cannot run is skipped and counted; with CI=true
a skipped stage fails the run.",
        flags: &[],
        takes_names: false,
        run: |given| ci::run(given.into()),
    },
];
