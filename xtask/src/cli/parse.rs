//! Reading a command line against the table of commands: the options
//! (each shared one's value checked as it is read), the command, its names.

use super::flags::{self, Flag, Role};
use super::help;
use super::{Command, Common, Given};
use crate::ground::error::UsageError;

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
