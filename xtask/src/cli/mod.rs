//! The command line: its options (`flags`), how a line is read against
//! the table of commands (`commands::COMMANDS`, which declares each command
//! once), `--help` and "did you mean" (`help`), and each command's typed
//! arguments (`args`). Nothing below the commands sees these types.

use crate::config::Overrides;
use crate::error::UsageError;
use crate::progress::Verbosity;
use crate::python::installer::InstallerChoice;

pub mod args;
pub mod flags;
mod help;
#[cfg(test)]
mod tests;

use flags::{Flag, Role};

/// One subcommand, declared once: what `--help` says of it, the options
/// it takes, whether it takes names, and what runs it.
pub struct Command {
    pub name: &'static str,
    /// After its name in the overview: `[LAYER...]`, `FUNCTION | --all`.
    pub arguments: &'static str,
    /// Its line in the overview; each further line is indented under the first.
    pub summary: &'static str,
    /// `cargo xtask <name> [OPTIONS] …`
    pub usage: &'static str,
    /// What `cargo xtask <name> --help` says above the usage.
    pub about: &'static str,
    /// The options it takes besides those of every command (`flags::EVERY`).
    pub flags: &'static [&'static Flag],
    /// Whether it takes names after it (layers, functions, profiles).
    pub takes_names: bool,
    /// Builds its typed arguments from what was given, and runs it.
    pub run: fn(Given) -> anyhow::Result<()>,
}

impl Command {
    pub fn takes(&self, flag: &Flag) -> bool {
        flags::EVERY.iter().chain(self.flags).any(|taken| taken.is(flag))
    }
}

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

/// A command line read against the table: the command, the options every
/// command shares, its names and its own options, for its typed arguments.
pub struct Given {
    pub command: &'static Command,
    pub common: Common,
    pub names: Vec<String>,
    /// The whole command line, as it was given.
    pub line: Vec<String>,
    own: Vec<(&'static Flag, Option<String>)>,
}

impl Given {
    /// Whether the switch `flag` was given.
    pub fn switch(&self, flag: &Flag) -> bool {
        self.given(flag).next().is_some()
    }

    /// The last value given to `flag`.
    pub fn value(&self, flag: &Flag) -> Option<String> {
        self.given(flag).last().flatten()
    }

    /// Every value given to `flag`, in order.
    pub fn values(&self, flag: &Flag) -> Vec<String> {
        self.given(flag).flatten().collect()
    }

    fn given<'a>(&'a self, flag: &'a Flag) -> impl Iterator<Item = Option<String>> + 'a {
        debug_assert!(
            self.command.takes(flag),
            "`{}` reads {}",
            self.command.name,
            flag.long
        );
        self.own
            .iter()
            .filter(move |(given, _)| given.is(flag))
            .map(|(_, value)| value.clone())
    }
}

/// What a command line asks for.
pub enum Parsed {
    /// Help: the overview or a command's text.
    Help(String),
    Run(Given),
}

/// The options and words of a command line, before its command is known.
#[derive(Default)]
struct Read {
    common: Common,
    help: bool,
    /// The command's name, then its names.
    words: Vec<String>,
    /// Every option given, in order, with its value.
    given: Vec<(&'static Flag, Option<String>)>,
}

pub fn parse(
    table: &'static [Command],
    args: impl IntoIterator<Item = String>,
) -> Result<Parsed, UsageError> {
    let line: Vec<String> = args.into_iter().collect();
    let read = read(&line)?;
    let Some((name, names)) = read.words.split_first() else {
        if read.help {
            return Ok(Parsed::Help(help::overview(table)));
        }
        return Err(UsageError::new("no command given (try cargo xtask --help)"));
    };
    if name == help::HELP {
        return help_topic(table, names.first());
    }
    let command = find(table, name)?;
    if let Some((flag, _)) = read.given.iter().find(|(flag, _)| !command.takes(flag)) {
        return Err(UsageError::new(format!(
            "`{name}` takes no {} (see cargo xtask {name} --help)",
            flag.long
        )));
    }
    if read.help {
        return Ok(Parsed::Help(help::command_help(command)));
    }
    if !command.takes_names && !names.is_empty() {
        return Err(UsageError::new(format!(
            "`{name}` takes no names, got `{}`",
            names.join(" ")
        )));
    }
    Ok(Parsed::Run(Given {
        command,
        common: read.common,
        names: names.to_vec(),
        line,
        own: read
            .given
            .into_iter()
            .filter(|(flag, _)| matches!(flag.role, Role::Own))
            .collect(),
    }))
}

/// Reads every option (checking the values of the shared ones) and keeps
/// the other words in order.
fn read(line: &[String]) -> Result<Read, UsageError> {
    let mut read = Read::default();
    let mut args = line.iter().cloned();
    while let Some(arg) = args.next() {
        let (spelled, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let Some(flag) = flags::find(spelled) else {
            if spelled.starts_with('-') {
                return Err(help::unknown_option(spelled));
            }
            read.words.push(arg);
            continue;
        };
        let value = match flag.value {
            None => None,
            Some(_) => Some(
                inline
                    .or_else(|| args.next())
                    .ok_or_else(|| UsageError::new(format!("{} needs a value (see --help)", flag.long)))?,
            ),
        };
        match flag.role {
            Role::Help => read.help = true,
            Role::Common(set) => set(&mut read.common, value.clone())?,
            Role::Own => {}
        }
        read.given.push((flag, value));
    }
    Ok(read)
}

/// `cargo xtask help [COMMAND]`.
fn help_topic(table: &'static [Command], topic: Option<&String>) -> Result<Parsed, UsageError> {
    let text = match topic {
        None => help::overview(table),
        Some(topic) => help::command_help(find(table, topic)?),
    };
    Ok(Parsed::Help(text))
}

fn find(table: &'static [Command], name: &str) -> Result<&'static Command, UsageError> {
    table
        .iter()
        .find(|command| command.name == name)
        .ok_or_else(|| help::unknown_command(table, name))
}
