//! Reading a command line against a table: on a table of two commands
//! of its own (`commands::tests` checks the real one).

use super::flags::{ALL, ARCH, BUILDER, ENV, EVENT, JOBS, JSON};
use super::parse::{parse, Parsed};
use super::*;
use crate::config::BuilderChoice;
use crate::facts::Arch;
use crate::ground::error::UsageError;
use crate::ground::progress::Verbosity;

static TABLE: &[Command] = &[
    Command {
        name: "build",
        arguments: "",
        summary: "everything",
        usage: "cargo xtask build [OPTIONS]",
        about: "Builds everything.",
        flags: &[&JSON, &BUILDER, &ARCH, &JOBS],
        takes_names: false,
        run: |_| Ok(()),
    },
    Command {
        name: "invoke",
        arguments: "FUNCTION | --all",
        summary: "runs a function\nor all of them",
        usage: "cargo xtask invoke [OPTIONS] FUNCTION | --all",
        about: "Runs a function.",
        flags: &[&ALL, &EVENT, &ENV],
        takes_names: true,
        run: |_| Ok(()),
    },
];

fn parse_str(line: &str) -> Result<Parsed, UsageError> {
    parse(TABLE, line.split_whitespace().map(String::from))
}

fn given(line: &str) -> Given {
    match parse_str(line) {
        Ok(Parsed::Run(given)) => given,
        Ok(Parsed::Help(text)) => panic!("`{line}`: help instead of a run:\n{text}"),
        Err(err) => panic!("`{line}`: {err}"),
    }
}

fn help(line: &str) -> String {
    match parse_str(line) {
        Ok(Parsed::Help(text)) => text,
        Ok(Parsed::Run(given)) => panic!("`{line}`: runs {}", given.command.name),
        Err(err) => panic!("`{line}`: {err}"),
    }
}

fn error(line: &str) -> String {
    match parse_str(line) {
        Err(err) => err.to_string(),
        Ok(_) => panic!("`{line}` parsed"),
    }
}

#[test]
fn shared_options_are_read_and_checked() {
    let given = given("build --jobs 3 --builder=host --arch arm64 --json -q");
    assert_eq!(given.command.name, "build");
    assert_eq!(given.common.jobs, Some(3));
    assert_eq!(given.common.overrides.builder, Some(BuilderChoice::Host));
    assert_eq!(given.common.overrides.arch, Some(Arch::Arm64));
    assert!(given.common.json);
    assert_eq!(given.common.verbosity, Verbosity::Quiet);
    assert_eq!(error("build --jobs 0"), "--jobs: `0` is not a positive number");
    assert!(error("build --builder lambda").contains("unknown builder `lambda`"));
    assert_eq!(error("build --jobs"), "--jobs needs a value (see --help)");
}

#[test]
fn own_options_and_names_reach_the_command() {
    let given = given("invoke auth --env A=1 --event first.json --env=B=2 --event=e.json");
    assert_eq!(given.names, ["auth"]);
    assert!(!given.switch(&ALL));
    assert_eq!(given.value(&EVENT).as_deref(), Some("e.json"));
    assert_eq!(given.values(&ENV), ["A=1", "B=2"]);
    assert_eq!(given.line.len(), 8, "the whole line, for the CI harness");
    assert!(self::given("invoke --all").switch(&ALL));
}

#[test]
fn what_a_command_does_not_take_is_refused() {
    assert_eq!(
        error("build --all"),
        "`build` takes no --all (see cargo xtask build --help)"
    );
    assert_eq!(error("build extra"), "`build` takes no names, got `extra`");
    assert_eq!(error(""), "no command given (try cargo xtask --help)");
}

#[test]
fn a_typo_gets_a_suggestion() {
    assert!(error("biuld").contains("unknown command `biuld`: did you mean `build`?"));
    assert!(error("hlep").contains("did you mean `help`?"));
    assert!(error("build --dryrun").contains("unknown option `--dryrun`: did you mean `--dry-run`?"));
    assert!(!error("frobnicate").contains("did you mean"));
    assert!(error("help biuld").contains("did you mean `build`?"));
}

#[test]
fn the_overview_lists_the_table_then_help() {
    let text = help("--help");
    assert_eq!(text, help("help"));
    let commands = text
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap();
    assert_eq!(
        commands,
        "  build                     everything\n\
         \x20 invoke FUNCTION | --all   runs a function\n\
         \x20                           or all of them\n\
         \x20 help [COMMAND]            this text, or a command's"
    );
}

#[test]
fn a_command_help_lists_only_its_options() {
    let text = help("invoke --help");
    assert_eq!(text, help("help invoke"));
    assert!(text.starts_with("Runs a function.\n\nUsage: cargo xtask invoke [OPTIONS] FUNCTION | --all\n"));
    assert!(
        text.contains("\n      --event <FILE|->      the event to send"),
        "{text}"
    );
    assert!(text.contains("\n  -q, --quiet "), "{text}");
    assert!(!text.contains("--builder"), "{text}");
    // Help is asked before the names are checked, not before the options.
    assert!(help("build extra --help").contains("Builds everything."));
    assert!(error("build --help --all").contains("takes no --all"));
}
