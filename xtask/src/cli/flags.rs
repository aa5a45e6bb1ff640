//! Every option of the command line, once: its spellings, its value, its
//! help line and what it sets. Each command lists the ones it takes
//! (`commands::COMMANDS`); `--help` shows them in this order.

use crate::config::{BuilderChoice, Overrides, RunnerChoice};
use crate::facts::Arch;
use crate::ground::error::UsageError;
use crate::ground::progress::Verbosity;
use crate::python::installer::InstallerChoice;

/// The options every command shares; one a command does not take keeps
/// its default.
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub json: bool,
    pub verbosity: Verbosity,
    pub force: bool,
    pub dry_run: bool,
    pub jobs: Option<usize>,
    pub installer: InstallerChoice,
    pub overrides: Overrides,
}

/// One option.
pub struct Flag {
    pub long: &'static str,
    pub short: Option<&'static str>,
    /// The placeholder of its value in `--help`; `None`: a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
    pub(super) role: Role,
}

/// What an option does once read.
pub(super) enum Role {
    /// Asks for help instead of a run.
    Help,
    /// Sets one of the flags every command shares (checked as it is read).
    Common(fn(&mut Common, Option<String>) -> Result<(), UsageError>),
    /// The command's own: its typed arguments read it (`Given::switch`, `value`, `values`).
    Own,
}

impl Flag {
    pub fn is(&self, other: &Flag) -> bool {
        self.long == other.long
    }
}

/// The options every command takes, besides those it lists.
pub static EVERY: &[&Flag] = &[&QUIET, &INSTALLER, &DRY_RUN, &HELP];

/// Every option, in the order `--help` lists them.
pub static FLAGS: &[&Flag] = &[
    &JSON,
    &QUIET,
    &VERBOSE,
    &BUILDER,
    &IMAGE,
    &RUNNER,
    &ARCH,
    &FORCE,
    &JOBS,
    &ALL,
    &EVENT,
    &ENV,
    &LAYER,
    &CHECK,
    &UPGRADE,
    &UPGRADE_PACKAGE,
    &OPEN,
    &PORT,
    &WATCH,
    &FAKES,
    &SAVE_EVENTS,
    &DOCKER,
    &DENY,
    &MAX_SIZE,
    &INSTALLER,
    &DRY_RUN,
    &HELP,
];

/// The option spelled `spelled` (long or short).
pub(super) fn find(spelled: &str) -> Option<&'static Flag> {
    FLAGS
        .iter()
        .copied()
        .find(|flag| flag.long == spelled || flag.short == Some(spelled))
}

/// A flag's value (present: the parser asks for one when `value` is set).
fn given(value: Option<String>) -> String {
    value.unwrap_or_default()
}

pub static JSON: Flag = Flag {
    long: "--json",
    short: None,
    value: None,
    help: "machine-readable result on stdout (human text stays on stderr)",
    role: Role::Common(|common, _| {
        common.json = true;
        Ok(())
    }),
};

pub static QUIET: Flag = Flag {
    long: "--quiet",
    short: Some("-q"),
    value: None,
    help: "print only warnings and errors",
    role: Role::Common(|common, _| {
        common.verbosity = Verbosity::Quiet;
        Ok(())
    }),
};

pub static VERBOSE: Flag = Flag {
    long: "--verbose",
    short: Some("-v"),
    value: None,
    help: "also say why each step runs, and when each ran (the timeline)",
    role: Role::Common(|common, _| {
        common.verbosity = Verbosity::Verbose;
        Ok(())
    }),
};

pub static BUILDER: Flag = Flag {
    long: "--builder",
    short: None,
    value: Some("<BUILDER>"),
    help: "auto | container | host (overrides `builder`)",
    role: Role::Common(|common, value| {
        let name = given(value);
        let builder = BuilderChoice::parse(&name).ok_or_else(|| {
            UsageError::new(format!(
                "--builder: unknown builder `{name}` (use auto, container or host)"
            ))
        })?;
        common.overrides.builder = Some(builder);
        Ok(())
    }),
};

pub static IMAGE: Flag = Flag {
    long: "--image",
    short: None,
    value: Some("<IMAGE>"),
    help: "the build image (overrides `image`)",
    role: Role::Common(|common, value| {
        common.overrides.image = value;
        Ok(())
    }),
};

pub static RUNNER: Flag = Flag {
    long: "--runner",
    short: None,
    value: Some("<RUNNER>"),
    help: "host | container: where smoke and invoke run functions (default: the build image with the container builder, else the host)",
    role: Role::Common(|common, value| {
        let name = given(value);
        common.overrides.runner = Some(match name.as_str() {
            "host" => RunnerChoice::Host,
            "container" => RunnerChoice::Container,
            _ => {
                return Err(UsageError::new(format!(
                    "--runner: unknown runner `{name}` (use host or container)"
                )))
            }
        });
        Ok(())
    }),
};

pub static ARCH: Flag = Flag {
    long: "--arch",
    short: None,
    value: Some("<ARCH>"),
    help: "x86_64 | arm64 (overrides `architecture`)",
    role: Role::Common(|common, value| {
        let name = given(value);
        let arch = Arch::parse(&name).ok_or_else(|| {
            UsageError::new(format!(
                "--arch: unknown architecture `{name}` (use x86_64 or arm64)"
            ))
        })?;
        common.overrides.arch = Some(arch);
        Ok(())
    }),
};

pub static FORCE: Flag = Flag {
    long: "--force",
    short: None,
    value: None,
    help: "rebuild what the command needs, ignoring the cache",
    role: Role::Common(|common, _| {
        common.force = true;
        Ok(())
    }),
};

pub static JOBS: Flag = Flag {
    long: "--jobs",
    short: Some("-j"),
    value: Some("<N>"),
    help: "build at most N layers at once (default: number of CPUs)",
    role: Role::Common(|common, value| {
        let text = given(value);
        let jobs: usize = text
            .parse()
            .ok()
            .filter(|&jobs| jobs > 0)
            .ok_or_else(|| UsageError::new(format!("--jobs: `{text}` is not a positive number")))?;
        common.jobs = Some(jobs);
        Ok(())
    }),
};

pub static ALL: Flag = Flag {
    long: "--all",
    short: None,
    value: None,
    help: "every sample event of every function (<events>/<function>/*.json), against local fakes",
    role: Role::Own,
};

pub static EVENT: Flag = Flag {
    long: "--event",
    short: None,
    value: Some("<FILE|->"),
    help: "the event to send, a JSON file or - for stdin (default: {})",
    role: Role::Own,
};

pub static ENV: Flag = Flag {
    long: "--env",
    short: None,
    value: Some("<KEY=VALUE>"),
    help: "a variable of the function's environment (repeatable)",
    role: Role::Own,
};

pub static LAYER: Flag = Flag {
    long: "--layer",
    short: None,
    value: Some("<NAME=ZIP>"),
    help: "a local ZIP standing in for a layer, e.g. an external one (repeatable)",
    role: Role::Own,
};

pub static CHECK: Flag = Flag {
    long: "--check",
    short: None,
    value: None,
    help: "write nothing: fail (exit 2) when a lock is missing or older than its requirements",
    role: Role::Own,
};

pub static UPGRADE: Flag = Flag {
    long: "--upgrade",
    short: None,
    value: None,
    help: "resolve every distribution anew (by default a lock keeps its pins)",
    role: Role::Own,
};

pub static UPGRADE_PACKAGE: Flag = Flag {
    long: "--upgrade-package",
    short: None,
    value: Some("<NAME>"),
    help: "resolve this distribution anew, keep the other pins (repeatable)",
    role: Role::Own,
};

pub static OPEN: Flag = Flag {
    long: "--open",
    short: None,
    value: None,
    help: "open the report with xdg-open (or open); without one, print its path",
    role: Role::Own,
};

pub static PORT: Flag = Flag {
    long: "--port",
    short: Some("-p"),
    value: Some("<N>"),
    help: "the port on 127.0.0.1 (default 8000; 0: a free one, printed)",
    role: Role::Own,
};

pub static WATCH: Flag = Flag {
    long: "--watch",
    short: Some("-w"),
    value: None,
    help: "rebuild on save and reload only the functions whose build changed",
    role: Role::Own,
};

pub static FAKES: Flag = Flag {
    long: "--fakes",
    short: None,
    value: None,
    help: "start the sample events' local world (<events>/fakes.py) and give the functions its variables",
    role: Role::Own,
};

pub static SAVE_EVENTS: Flag = Flag {
    long: "--save-events",
    short: None,
    value: Some("<DIR>"),
    help: "write every event sent to a function into DIR, named by the apigw-requestid of its response",
    role: Role::Own,
};

pub static DOCKER: Flag = Flag {
    long: "--docker",
    short: None,
    value: None,
    help: "load each image function's image into the container engine (docker load) after the build",
    role: Role::Own,
};

pub static DENY: Flag = Flag {
    long: "--deny",
    short: None,
    value: Some("<SEVERITY>"),
    help: "LOW | MODERATE | HIGH | CRITICAL: a finding at or above it fails (overrides `audit.deny`)",
    role: Role::Own,
};

pub static MAX_SIZE: Flag = Flag {
    long: "--max-size",
    short: None,
    value: Some("<SIZE>"),
    help: "the most the cache may keep, e.g. \"500 MiB\" (overrides XTASK_CACHE_MAX; 0 empties it)",
    role: Role::Own,
};

pub static INSTALLER: Flag = Flag {
    long: "--installer",
    short: None,
    value: Some("<NAME>"),
    help: "auto | uv | pip: the host installer (default: uv, else pip)",
    role: Role::Common(|common, value| {
        let name = given(value);
        common.installer = match name.as_str() {
            "auto" => InstallerChoice::Auto,
            "uv" => InstallerChoice::Uv,
            "pip" => InstallerChoice::Pip,
            _ => {
                return Err(UsageError::new(format!(
                    "--installer: unknown installer `{name}` (use auto, uv or pip)"
                )))
            }
        };
        Ok(())
    }),
};

pub static DRY_RUN: Flag = Flag {
    long: "--dry-run",
    short: None,
    value: None,
    help: "print what would run and why; touch nothing",
    role: Role::Common(|common, _| {
        common.dry_run = true;
        Ok(())
    }),
};

pub static HELP: Flag = Flag {
    long: "--help",
    short: Some("-h"),
    value: None,
    help: "this text",
    role: Role::Help,
};
