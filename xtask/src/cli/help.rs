//! What `--help` says, and what a typo gets: the overview and each
//! command's text, both from the command table, the options each command
//! takes, and "did you mean".

use super::flags::FLAGS;
use super::Command;
use crate::ground::error::UsageError;

const INTRO: &str = "\
Builds, packages and verifies the repository's Python AWS Lambda functions.

Usage: cargo xtask <COMMAND> [OPTIONS] [NAMES...]

Commands:
";

const OUTRO: &str = "
Every command brings what it needs up to date first, from one build graph
whose keys cover every input; unchanged steps are reused from target/lambda.
Configuration: [workspace.metadata.lambda] in the root Cargo.toml (see README.md).
Exit codes: 0 success, 1 the work failed or a limit is crossed, 2 bad usage or configuration.
";

/// The command that is no entry of the table: it asks for this text.
pub(super) const HELP: &str = "help";

/// `cargo xtask --help`: a line for each command of `table`, then `help`.
pub(super) fn overview(table: &[Command]) -> String {
    let mut text = String::from(INTRO);
    let mut line = |synopsis: &str, summary: &str| {
        for (index, part) in summary.lines().enumerate() {
            let lead = if index == 0 { synopsis } else { "" };
            text.push_str(&format!("  {lead:<26}{part}\n"));
        }
    };
    for command in table {
        let synopsis = format!("{} {}", command.name, command.arguments);
        line(synopsis.trim_end(), command.summary);
    }
    line("help [COMMAND]", "this text, or a command's");
    text.push_str(OUTRO);
    text
}

/// `cargo xtask <COMMAND> --help`.
pub(super) fn command_help(command: &Command) -> String {
    format!(
        "{}\n\nUsage: {}\n{}",
        command.about,
        command.usage,
        options_help(command)
    )
}

/// The options section of one command's help: only the flags it takes.
fn options_help(command: &Command) -> String {
    let mut text = String::from("\nOptions:\n");
    for flag in FLAGS.iter().filter(|flag| command.takes(flag)) {
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

/// An unknown command, with the nearest of `table` (or `help`).
pub(super) fn unknown_command(table: &[Command], typed: &str) -> UsageError {
    let known = table.iter().map(|command| command.name).chain([HELP]);
    unknown("command", typed, known)
}

/// An unknown option, with the nearest spelling of one.
pub(super) fn unknown_option(typed: &str) -> UsageError {
    let known = FLAGS
        .iter()
        .flat_map(|flag| [Some(flag.long), flag.short])
        .flatten();
    unknown("option", typed, known)
}

fn unknown<'a>(what: &str, typed: &str, known: impl IntoIterator<Item = &'a str>) -> UsageError {
    match did_you_mean(typed, known) {
        Some(guess) => UsageError::new(format!(
            "unknown {what} `{typed}`: did you mean `{guess}`? (see cargo xtask --help)"
        )),
        None => UsageError::new(format!("unknown {what} `{typed}` (see cargo xtask --help)")),
    }
}
