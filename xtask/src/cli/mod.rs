//! The command line: its options (`flags`), how a line is read against
//! the table of commands (`commands::COMMANDS`, which declares each command
//! once), `--help` and "did you mean" (`help`), and each command's typed
//! arguments (`args`). Nothing below the commands sees these types.

pub mod args;
pub mod flags;
mod help;
pub mod parse;
#[cfg(test)]
mod tests;

pub use flags::Common;

use flags::Flag;

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
