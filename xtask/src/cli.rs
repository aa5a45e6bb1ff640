//! The command line: subcommands, their flags and their `--help`.

use anyhow::Result;

use crate::config::{BuilderChoice, Overrides};
use crate::error::UsageError;
use crate::facts::Arch;
use crate::progress::Verbosity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstallerChoice {
    #[default]
    Auto,
    Uv,
    Pip,
}

/// Flags every subcommand understands.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub json: bool,
    pub verbosity: Verbosity,
    pub force: bool,
    pub dry_run: bool,
    pub jobs: Option<usize>,
    pub installer: InstallerChoice,
    pub overrides: Overrides,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help(String),
    BuildLayers(Vec<String>),
    Package(Vec<String>),
    CheckLimits,
    Smoke(Vec<String>),
    Build,
    Ci,
}

#[derive(Debug)]
pub struct Invocation {
    pub command: Command,
    pub options: Options,
}

const OVERVIEW: &str = "\
Builds, packages and verifies the repository's Python AWS Lambda functions.

Usage: cargo xtask <COMMAND> [OPTIONS] [NAMES...]

Commands:
  build-layers [LAYER...]   install each dependency profile into dist/layers/<name>.zip
  package [FUNCTION...]     zip source layers (shared code) and thin function ZIPs
  check-limits              check every function with its layers against AWS's limits,
                            the budgets and its imports
  smoke [FUNCTION...]       import each handler with its layers laid out as Lambda does
  build                     all of the above in order: the main job
  ci                        everything CI checks: fmt, clippy, tests, pytest, terraform
  help [COMMAND]            this text, or a command's

Every command brings what it needs up to date first, from one build graph
whose keys cover every input; unchanged steps are reused from target/lambda.
Configuration: [workspace.metadata.lambda] in the root Cargo.toml (see README.md).
Exit codes: 0 success, 1 the work failed or a limit is crossed, 2 bad usage or configuration.
";

const COMMON: &str = "
Options:
      --json                machine-readable result on stdout (human text stays on stderr)
  -q, --quiet               print only warnings and errors
  -v, --verbose             also say why each step runs
      --builder <BUILDER>   auto | container | host (overrides `builder`)
      --arch <ARCH>         x86_64 | arm64 (overrides `architecture`)
      --force               rebuild what the command needs, ignoring the cache
      --jobs <N>            build at most N layers at once (default: number of CPUs)
      --installer <NAME>    auto | uv | pip: the host installer (default: uv, else pip)
      --dry-run             print what would run and why; touch nothing
  -h, --help                this text
";

fn command_help(command: &str) -> Option<String> {
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
            "Extracts each function's layers into an /opt-like folder and its ZIP into a
/var/task-like one, imports its handler with the runtime's Python and Lambda's
sys.path, and reports the import time against `import_budget` (default 3 s).
What it imports is brought up to date first; a verdict is cached by the keys
of the function's ZIP, its layers in order and the interpreter.
The runtime's boto3 is installed once into target/lambda/runtime (or taken from
XTASK_RUNTIME_SITE=DIR). --jobs defaults to at most 4 here, to keep timings honest.",
        ),
        "build" => (
            "cargo xtask build [OPTIONS]",
            "Brings everything up to date: dependency layers, source layers, function ZIPs,
dist/manifest.json (written whole, only when every product is built), and the
check and smoke test of every function. Only stale steps run; dist/ holds
exactly what the graph produces.",
        ),
        "ci" => (
            "cargo xtask ci [OPTIONS]",
            "Runs what CI checks: cargo fmt --check, cargo clippy -D warnings, cargo test,
the Python test suite in a virtualenv, an end-to-end build of the example
application, and the Terraform tests when terraform is installed.",
        ),
        _ => return None,
    };
    Some(format!("{about}\n\nUsage: {usage}\n{COMMON}"))
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Invocation, UsageError> {
    let mut args = args.into_iter();
    let mut options = Options::default();
    let mut positional = Vec::new();
    let mut command_name: Option<String> = None;
    let mut want_help = false;
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, UsageError> {
            inline_value
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| UsageError::new(format!("{name} needs a value (see --help)")))
        };
        match flag.as_str() {
            "-h" | "--help" => want_help = true,
            "--json" => options.json = true,
            "-q" | "--quiet" => options.verbosity = Verbosity::Quiet,
            "-v" | "--verbose" => options.verbosity = Verbosity::Verbose,
            "--force" => options.force = true,
            "--dry-run" => options.dry_run = true,
            "--builder" => {
                let name = value("--builder")?;
                let builder = BuilderChoice::parse(&name).ok_or_else(|| {
                    UsageError::new(format!(
                        "--builder: unknown builder `{name}` (use auto, container or host)"
                    ))
                })?;
                options.overrides.builder = Some(builder);
            }
            "--arch" => {
                let name = value("--arch")?;
                let arch = Arch::parse(&name).ok_or_else(|| {
                    UsageError::new(format!(
                        "--arch: unknown architecture `{name}` (use x86_64 or arm64)"
                    ))
                })?;
                options.overrides.arch = Some(arch);
            }
            "--jobs" | "-j" => {
                let text = value("--jobs")?;
                let jobs: usize =
                    text.parse().ok().filter(|&jobs| jobs > 0).ok_or_else(|| {
                        UsageError::new(format!("--jobs: `{text}` is not a positive number"))
                    })?;
                options.jobs = Some(jobs);
            }
            "--installer" => {
                let name = value("--installer")?;
                options.installer = match name.as_str() {
                    "auto" => InstallerChoice::Auto,
                    "uv" => InstallerChoice::Uv,
                    "pip" => InstallerChoice::Pip,
                    _ => {
                        return Err(UsageError::new(format!(
                            "--installer: unknown installer `{name}` (use auto, uv or pip)"
                        )))
                    }
                };
            }
            _ if flag.starts_with('-') => {
                return Err(UsageError::new(format!(
                    "unknown option `{flag}` (see cargo xtask --help)"
                )));
            }
            _ if command_name.is_none() => command_name = Some(arg),
            _ => positional.push(arg),
        }
    }
    let Some(name) = command_name else {
        if want_help {
            return Ok(Invocation {
                command: Command::Help(OVERVIEW.to_string()),
                options,
            });
        }
        return Err(UsageError::new("no command given (try cargo xtask --help)"));
    };
    if name == "help" {
        let text = match positional.first() {
            None => OVERVIEW.to_string(),
            Some(topic) => command_help(topic).ok_or_else(|| {
                UsageError::new(format!("unknown command `{topic}` (see cargo xtask --help)"))
            })?,
        };
        return Ok(Invocation {
            command: Command::Help(text),
            options,
        });
    }
    let help = command_help(&name)
        .ok_or_else(|| UsageError::new(format!("unknown command `{name}` (see cargo xtask --help)")))?;
    if want_help {
        return Ok(Invocation {
            command: Command::Help(help),
            options,
        });
    }
    let no_names = |command: Command| {
        if positional.is_empty() {
            Ok(command)
        } else {
            Err(UsageError::new(format!(
                "`{name}` takes no names, got `{}`",
                positional.join(" ")
            )))
        }
    };
    let command = match name.as_str() {
        "build-layers" => Command::BuildLayers(positional),
        "package" => Command::Package(positional),
        "smoke" => Command::Smoke(positional),
        "check-limits" => no_names(Command::CheckLimits)?,
        "build" => no_names(Command::Build)?,
        "ci" => no_names(Command::Ci)?,
        _ => unreachable!("command_help knows exactly these commands"),
    };
    Ok(Invocation { command, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Invocation, UsageError> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn flags_and_names() {
        let invocation =
            parse_str("build-layers core --jobs 3 --builder=host --arch arm64 --json sms").unwrap();
        assert_eq!(
            invocation.command,
            Command::BuildLayers(vec!["core".into(), "sms".into()])
        );
        assert_eq!(invocation.options.jobs, Some(3));
        assert_eq!(invocation.options.overrides.builder, Some(BuilderChoice::Host));
        assert_eq!(invocation.options.overrides.arch, Some(Arch::Arm64));
        assert!(invocation.options.json);
    }

    #[test]
    fn bad_usage_is_an_error() {
        assert!(parse_str("").is_err());
        assert!(parse_str("frobnicate").is_err());
        assert!(parse_str("build-layers --jobs 0").is_err());
        assert!(parse_str("build-layers --builder lambda").is_err());
        assert!(parse_str("check-limits extra").is_err());
        assert!(parse_str("build --colour").is_err());
    }

    #[test]
    fn help_for_each_command() {
        for name in ["build-layers", "package", "check-limits", "smoke", "build", "ci"] {
            match parse_str(&format!("{name} --help")).unwrap().command {
                Command::Help(text) => assert!(text.contains(&format!("cargo xtask {name}"))),
                other => panic!("expected help, got {other:?}"),
            }
        }
    }
}
