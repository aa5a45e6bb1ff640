//! The command line: subcommands, their flags and their `--help`.

use anyhow::Result;

use crate::config::{BuilderChoice, Overrides, RunnerChoice};
use crate::error::UsageError;
use crate::facts::Arch;
use crate::progress::Verbosity;
use crate::python::installer::InstallerChoice;

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
    /// `invoke --all`.
    pub all: bool,
    /// `invoke --event FILE|-`.
    pub event: Option<String>,
    /// `invoke --env KEY=VALUE`, as given.
    pub env: Vec<String>,
    /// `invoke --layer NAME=ZIP`, as given.
    pub layers: Vec<String>,
    /// `lock --check`.
    pub check: bool,
    /// `lock --upgrade`.
    pub upgrade: bool,
    /// `lock --upgrade-package NAME`.
    pub upgrade_packages: Vec<String>,
    /// `report --open`.
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help(String),
    BuildLayers(Vec<String>),
    Package(Vec<String>),
    CheckLimits,
    Smoke(Vec<String>),
    Invoke(Vec<String>),
    Lock(Vec<String>),
    Build,
    Report,
    Ci,
}

#[derive(Debug)]
pub struct Invocation {
    pub command: Command,
    pub options: Options,
}

mod help;

use help::{command_help, unknown, COMMANDS, FLAGS, OVERVIEW};

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Invocation, UsageError> {
    let mut args = args.into_iter();
    let mut options = Options::default();
    let mut positional = Vec::new();
    let mut command_name: Option<String> = None;
    let mut want_help = false;
    // The options given, by their long spelling: checked against the
    // command once it is known.
    let mut given: Vec<&'static str> = Vec::new();
    while let Some(arg) = args.next() {
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        if let Some(known) = FLAGS
            .iter()
            .find(|known| known.long == flag || known.short == Some(flag.as_str()))
        {
            given.push(known.long);
        }
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
            "--image" => options.overrides.image = Some(value("--image")?),
            "--runner" => {
                let name = value("--runner")?;
                options.overrides.runner = Some(match name.as_str() {
                    "host" => RunnerChoice::Host,
                    "container" => RunnerChoice::Container,
                    _ => {
                        return Err(UsageError::new(format!(
                            "--runner: unknown runner `{name}` (use host or container)"
                        )))
                    }
                });
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
            "--all" => options.all = true,
            "--check" => options.check = true,
            "--open" => options.open = true,
            "--upgrade" => options.upgrade = true,
            "--upgrade-package" => options.upgrade_packages.push(value("--upgrade-package")?),
            "--event" => options.event = Some(value("--event")?),
            "--env" => options.env.push(value("--env")?),
            "--layer" => options.layers.push(value("--layer")?),
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
                let known = FLAGS
                    .iter()
                    .flat_map(|known| [Some(known.long), known.short])
                    .flatten();
                return Err(unknown("option", &flag, known.collect()));
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
            Some(topic) => command_help(topic).ok_or_else(|| unknown("command", topic, COMMANDS.to_vec()))?,
        };
        return Ok(Invocation {
            command: Command::Help(text),
            options,
        });
    }
    let help = command_help(&name).ok_or_else(|| unknown("command", &name, COMMANDS.to_vec()))?;
    if let Some(flag) = given.iter().find(|long| {
        FLAGS
            .iter()
            .any(|known| known.long == **long && !known.takes(&name))
    }) {
        return Err(UsageError::new(format!(
            "`{name}` takes no {flag} (see cargo xtask {name} --help)"
        )));
    }
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
        "invoke" => Command::Invoke(positional),
        "lock" => Command::Lock(positional),
        "check-limits" => no_names(Command::CheckLimits)?,
        "build" => no_names(Command::Build)?,
        "report" => no_names(Command::Report)?,
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
    fn a_typo_gets_a_suggestion() {
        let err = parse_str("biuld").err().unwrap().to_string();
        assert!(err.contains("did you mean `build`?"), "{err}");
        let err = parse_str("build --dryrun").err().unwrap().to_string();
        assert!(err.contains("did you mean `--dry-run`?"), "{err}");
        let err = parse_str("frobnicate").err().unwrap().to_string();
        assert!(!err.contains("did you mean"), "{err}");
        let err = parse_str("ci --json").err().unwrap().to_string();
        assert!(err.contains("`ci` takes no --json"), "{err}");
    }

    #[test]
    fn each_command_lists_only_its_own_options() {
        let Command::Help(ci) = parse_str("ci --help").unwrap().command else {
            panic!("help")
        };
        assert!(!ci.contains("--builder") && ci.contains("--installer"), "{ci}");
        let Command::Help(build) = parse_str("build --help").unwrap().command else {
            panic!("help")
        };
        assert!(build.contains("--builder") && build.contains("--json"), "{build}");
    }

    #[test]
    fn bad_usage_is_an_error() {
        assert!(parse_str("").is_err());
        assert!(parse_str("frobnicate").is_err());
        assert!(parse_str("build-layers --jobs 0").is_err());
        assert!(parse_str("build-layers --builder lambda").is_err());
        assert!(parse_str("check-limits extra").is_err());
        assert!(parse_str("build --colour").is_err());
        assert!(parse_str("build --open").is_err());
        assert!(parse_str("report sms").is_err());
        assert!(parse_str("report --open").unwrap().options.open);
    }

    #[test]
    fn help_for_each_command() {
        for name in [
            "build-layers",
            "package",
            "check-limits",
            "smoke",
            "invoke",
            "lock",
            "build",
            "report",
            "ci",
        ] {
            match parse_str(&format!("{name} --help")).unwrap().command {
                Command::Help(text) => assert!(text.contains(&format!("cargo xtask {name}"))),
                other => panic!("expected help, got {other:?}"),
            }
        }
    }
}
