//! What `--help` says, and what a typo gets: the overview, each command's
//! text, the options each command takes, and "did you mean".

use crate::error::UsageError;

pub(super) const OVERVIEW: &str = "\
Builds, packages and verifies the repository's Python AWS Lambda functions.

Usage: cargo xtask <COMMAND> [OPTIONS] [NAMES...]

Commands:
  build-layers [LAYER...]   install each dependency profile into dist/layers/<name>.zip
  package [FUNCTION...]     zip source layers (shared code) and thin function ZIPs
  check-limits              check every function with its layers against AWS's limits,
                            the budgets and its imports
  smoke [FUNCTION...]       start each function as Lambda does, under AWS's runtime
                            interface client, and time its init
  invoke FUNCTION | --all   run a packaged function under AWS's runtime interface
                            client and send it an event, or every sample event
  lock [PROFILE...]         resolve each dependency profile once into a lock with
                            hashes, beside its requirements; build-layers installs it
  build                     all of the above in order: the main job
  report [--open]           write dist/report.html again from what is built (and open it)
  ci                        everything CI checks: fmt, clippy, tests, pytest, terraform
  help [COMMAND]            this text, or a command's

Every command brings what it needs up to date first, from one build graph
whose keys cover every input; unchanged steps are reused from target/lambda.
Configuration: [workspace.metadata.lambda] in the root Cargo.toml (see README.md).
Exit codes: 0 success, 1 the work failed or a limit is crossed, 2 bad usage or configuration.
";

pub(super) const COMMANDS: &[&str] = &[
    "build-layers",
    "package",
    "check-limits",
    "smoke",
    "invoke",
    "lock",
    "build",
    "report",
    "ci",
    "help",
];

/// One option: its spellings, its value, what it does, and which
/// commands take it (`None`: every command).
pub(super) struct Flag {
    pub(super) long: &'static str,
    pub(super) short: Option<&'static str>,
    pub(super) value: Option<&'static str>,
    pub(super) help: &'static str,
    pub(super) commands: Option<&'static [&'static str]>,
}

/// The commands that run the build graph.
const GRAPH: &[&str] = &[
    "build-layers",
    "package",
    "check-limits",
    "smoke",
    "invoke",
    "build",
    "report",
];

/// The commands that run functions.
const RUNS: &[&str] = &["smoke", "invoke", "build", "report"];

/// The commands with a `--json` result.
const JSON: &[&str] = &[
    "build-layers",
    "package",
    "check-limits",
    "smoke",
    "build",
    "report",
];

pub(super) const FLAGS: &[Flag] = &[
    Flag {
        long: "--json",
        short: None,
        value: None,
        help: "machine-readable result on stdout (human text stays on stderr)",
        commands: Some(JSON),
    },
    Flag {
        long: "--quiet",
        short: Some("-q"),
        value: None,
        help: "print only warnings and errors",
        commands: None,
    },
    Flag {
        long: "--verbose",
        short: Some("-v"),
        value: None,
        help: "also say why each step runs",
        commands: Some(GRAPH),
    },
    Flag {
        long: "--builder",
        short: None,
        value: Some("<BUILDER>"),
        help: "auto | container | host (overrides `builder`)",
        commands: Some(GRAPH),
    },
    Flag {
        long: "--image",
        short: None,
        value: Some("<IMAGE>"),
        help: "the build image (overrides `image`)",
        commands: Some(GRAPH),
    },
    Flag {
        long: "--runner",
        short: None,
        value: Some("<RUNNER>"),
        help: "host | container: where smoke and invoke run functions (default: the build image with the container builder, else the host)",
        commands: Some(RUNS),
    },
    Flag {
        long: "--arch",
        short: None,
        value: Some("<ARCH>"),
        help: "x86_64 | arm64 (overrides `architecture`)",
        commands: Some(&[
            "build-layers",
            "package",
            "check-limits",
            "smoke",
            "invoke",
            "build",
            "report",
            "lock",
        ]),
    },
    Flag {
        long: "--force",
        short: None,
        value: None,
        help: "rebuild what the command needs, ignoring the cache",
        commands: Some(GRAPH),
    },
    Flag {
        long: "--jobs",
        short: Some("-j"),
        value: Some("<N>"),
        help: "build at most N layers at once (default: number of CPUs)",
        commands: Some(GRAPH),
    },
    Flag {
        long: "--all",
        short: None,
        value: None,
        help: "every sample event of every function (<events>/<function>/*.json), against local fakes",
        commands: Some(&["invoke"]),
    },
    Flag {
        long: "--event",
        short: None,
        value: Some("<FILE|->"),
        help: "the event to send, a JSON file or - for stdin (default: {})",
        commands: Some(&["invoke"]),
    },
    Flag {
        long: "--env",
        short: None,
        value: Some("<KEY=VALUE>"),
        help: "a variable of the function's environment (repeatable)",
        commands: Some(&["invoke"]),
    },
    Flag {
        long: "--layer",
        short: None,
        value: Some("<NAME=ZIP>"),
        help: "a local ZIP standing in for a layer, e.g. an external one (repeatable)",
        commands: Some(&["invoke"]),
    },
    Flag {
        long: "--check",
        short: None,
        value: None,
        help: "write nothing: fail (exit 2) when a lock is missing or older than its requirements",
        commands: Some(&["lock"]),
    },
    Flag {
        long: "--upgrade",
        short: None,
        value: None,
        help: "resolve every distribution anew (by default a lock keeps its pins)",
        commands: Some(&["lock"]),
    },
    Flag {
        long: "--upgrade-package",
        short: None,
        value: Some("<NAME>"),
        help: "resolve this distribution anew, keep the other pins (repeatable)",
        commands: Some(&["lock"]),
    },
    Flag {
        long: "--open",
        short: None,
        value: None,
        help: "open the report with xdg-open (or open); without one, print its path",
        commands: Some(&["report"]),
    },
    Flag {
        long: "--installer",
        short: None,
        value: Some("<NAME>"),
        help: "auto | uv | pip: the host installer (default: uv, else pip)",
        commands: None,
    },
    Flag {
        long: "--dry-run",
        short: None,
        value: None,
        help: "print what would run and why; touch nothing",
        commands: None,
    },
    Flag {
        long: "--help",
        short: Some("-h"),
        value: None,
        help: "this text",
        commands: None,
    },
];

impl Flag {
    pub(super) fn takes(&self, command: &str) -> bool {
        self.commands.is_none_or(|commands| commands.contains(&command))
    }
}

/// The options section of one command's help: only the flags it takes.
fn options_help(command: &str) -> String {
    let mut text = String::from("\nOptions:\n");
    for flag in FLAGS.iter().filter(|flag| flag.takes(command)) {
        let short = flag
            .short
            .map_or_else(|| "    ".to_string(), |short| format!("{short}, "));
        let spelled = format!(
            "{short}{}{}",
            flag.long,
            flag.value.map(|v| format!(" {v}")).unwrap_or_default()
        );
        text.push_str(&format!("  {spelled:<26}{}\n", flag.help));
    }
    text
}

/// The closest of `known` to `typed`, when it is close enough to be a typo.
fn did_you_mean<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|candidate| (edit_distance(typed, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance with adjacent transpositions (`biuld` → `build` is 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

pub(super) fn unknown(what: &str, typed: &str, known: Vec<&str>) -> UsageError {
    match did_you_mean(typed, known) {
        Some(guess) => UsageError::new(format!(
            "unknown {what} `{typed}`: did you mean `{guess}`? (see cargo xtask --help)"
        )),
        None => UsageError::new(format!("unknown {what} `{typed}` (see cargo xtask --help)")),
    }
}

pub(super) fn command_help(command: &str) -> Option<String> {
    let (usage, about) = match command {
        "build-layers" => (
            "cargo xtask build-layers [OPTIONS] [LAYER...]",
            "Installs every dependency profile (a layer with `requirements`) for the configured
runtime and architecture, in parallel, and writes dist/layers/<name>.zip with `python/`
at its root. Runtime-provided distributions (`exclude`, default boto3, botocore,
s3transfer, jmespath) are left out even when they arrive transitively.

Builders: `container` runs the installer in the Lambda build image with docker or
podman; `host` cross-installs manylinux wheels the runtime's glibc can load;
`auto` uses the container when an engine answers and the image is there (it never
pulls), else host. Results are cached under target/lambda by a key of every input
(the requirements and every file they include, the installer and its version, the
image id, the installer's environment variables); a hit does no work.",
        ),
        "package" => (
            "cargo xtask package [OPTIONS] [FUNCTION...]",
            "Zips every source layer (application code such as `shared`) as python/<package>/...
and one thin ZIP per function holding only its source folder. A function with
`bundle = true` gets its layers' content merged into its ZIP instead.
Unchanged inputs are not re-zipped.",
        ),
        "check-limits" => (
            "cargo xtask check-limits [OPTIONS]",
            "Checks every function together with its layers (built first when stale): unzipped
size against 262,144,000 bytes and the budgets, zipped size against direct upload,
the number of layers, files two layers both ship, and the imports of its code
against the distributions its layers provide (missing, unused, runtime-provided).
Verdicts are cached by the keys of what they check.",
        ),
        "smoke" => (
            "cargo xtask smoke [OPTIONS] [FUNCTION...]",
            "Runs each function's init phase as Lambda does: its ZIP read-only at a /var/task,
its layers in order at an /opt, an unprivileged user (uid 993 when run as root),
the runtime's Python (in the build image with the container builder) with
Lambda's sys.path and variables, under AWS's runtime interface client
(awslambdaric) against a Runtime API on 127.0.0.1. Reports Lambda's own error
(Runtime.ImportModuleError, Runtime.HandlerNotFound, Runtime.UserCodeSyntaxError…)
with the layer that would provide a missing module, and the init duration
against `import_budget` (default 3 s; over it, the fastest of 3 counts).
What it runs is brought up to date first; a verdict is cached by the keys
of the function's ZIP, its layers in order and the interpreter.
The runtime's boto3 and awslambdaric are installed once into target/lambda/runtime
(or taken from XTASK_RUNTIME_SITE=DIR and XTASK_RUNTIME_CLIENT=DIR).
--jobs defaults to at most 4 here, to keep timings honest.",
        ),
        "invoke" => (
            "cargo xtask invoke [OPTIONS] FUNCTION [--event FILE|-] | --all",
            "Runs a packaged function (everything built first) as `smoke` starts it, sends
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
        ),
        "lock" => (
            "cargo xtask lock [OPTIONS] [PROFILE...]",
            "Resolves each dependency profile (default: all) once, with uv, for the runtime and
architecture: binary wheels for the runtime's manylinux tags, every distribution
pinned with the sha256 of each of its files, into
<requirements folder>/<name>.<runtime>-<architecture>.lock (a requirements file
with --hash, which pip and uv both install; the header records the sha256 of the
requirements it was resolved from). A lock keeps its pins until --upgrade or
--upgrade-package NAME. build-layers installs a profile that has a lock from it
as it is (--no-deps --require-hashes), on the host and in the build image alike,
and refuses a lock older than its requirements (exit 2, naming this command).
--check writes nothing and fails when a lock is missing or stale: for CI.",
        ),
        "build" => (
            "cargo xtask build [OPTIONS]",
            "Brings everything up to date: dependency layers, source layers, function ZIPs,
dist/manifest.json (written whole, only when every product is built), the
check and smoke test of every function, and dist/report.html. Only stale steps
run; dist/ holds exactly what the graph produces.",
        ),
        "report" => (
            "cargo xtask report [OPTIONS]",
            "Writes dist/report.html again: one self-contained page with, for each function,
a treemap of its unzipped bytes (its code, each layer in order, their distributions
and largest files) under a scale with AWS's 262,144,000-byte limit and the budget,
unused distributions, files two layers both ship, what the runtime provides, the
init time, the same figures as a table, and what changed since the previous build.
Whatever it shows is brought up to date first, as `build` does (every other
command also rewrites the report whenever dist/manifest.json is whole). Prints its
path, or opens it with --open. Exit 1 only when it cannot be written (a step
failed); a function over a limit is shown, not an error here.",
        ),
        "ci" => (
            "cargo xtask ci [OPTIONS]",
            "Runs what CI checks: cargo fmt --check, cargo clippy -D warnings, cargo test,
the Python test suite in a virtualenv, an end-to-end build of the example
application, its dist/report.html loaded in headless Chromium (every total
checked against check-limits, a screenshot under target/lambda/report/),
invoke --all, the Terraform tests and an apply of terraform/envs/dev against
moto. A stage this machine cannot run is skipped and counted; with CI=true
a skipped stage fails the run.",
        ),
        _ => return None,
    };
    Some(format!("{about}\n\nUsage: {usage}\n{}", options_help(command)))
}
