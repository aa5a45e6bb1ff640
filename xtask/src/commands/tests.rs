//! The table of commands drives everything: each entry parses, has its
//! help and an overview line, dispatches to itself, and a typo of its name
//! is answered with it.

use super::COMMANDS;
use crate::cli::args::{InvokeArgs, LockArgs, NamesArgs, PruneCacheArgs, ReportArgs};
use crate::cli::flags::{EVERY, FLAGS};
use crate::cli::parse::{parse, Parsed};
use crate::cli::Given;
use crate::config::BuilderChoice;
use crate::facts::Arch;

fn parse_str(line: &str) -> Result<Parsed, String> {
    parse(COMMANDS, line.split_whitespace().map(String::from)).map_err(|err| err.to_string())
}

fn given(line: &str) -> Given {
    match parse_str(line) {
        Ok(Parsed::Run(given)) => given,
        Ok(Parsed::Help(_)) => panic!("`{line}`: help instead of a run"),
        Err(err) => panic!("`{line}`: {err}"),
    }
}

fn help(line: &str) -> String {
    match parse_str(line) {
        Ok(Parsed::Help(text)) => text,
        _ => panic!("`{line}`: no help"),
    }
}

fn error(line: &str) -> String {
    parse_str(line).err().unwrap_or_else(|| panic!("`{line}` parsed"))
}

#[test]
fn every_command_parses_and_dispatches_to_itself() {
    for command in COMMANDS {
        let given = given(command.name);
        assert!(std::ptr::eq(given.command, command), "{}", command.name);
        let with_name = format!("{} extra", command.name);
        if command.takes_names {
            assert_eq!(self::given(&with_name).names, ["extra"]);
        } else {
            let expected = format!("`{}` takes no names, got `extra`", command.name);
            assert_eq!(error(&with_name), expected);
        }
    }
}

#[test]
fn every_command_has_its_help_and_its_line() {
    let overview = help("--help");
    for command in COMMANDS {
        let text = help(&format!("{} --help", command.name));
        assert_eq!(text, help(&format!("help {}", command.name)));
        assert!(text.starts_with(command.about), "{}", command.name);
        assert!(
            text.contains(&format!("Usage: cargo xtask {} ", command.name)),
            "{text}"
        );
        assert!(text.contains("Options:") && text.contains("--dry-run"), "{text}");
        let line = format!("\n  {} ", command.name);
        assert!(overview.contains(&line), "no `{line}` in\n{overview}");
        assert!(!command.summary.is_empty() && !command.usage.is_empty());
    }
}

#[test]
fn a_typo_of_any_command_suggests_it() {
    for command in COMMANDS {
        let mut typo: Vec<char> = command.name.chars().collect();
        typo.swap(0, 1);
        let typo: String = typo.into_iter().collect();
        let expected = format!("did you mean `{}`?", command.name);
        assert!(error(&typo).contains(&expected), "{typo}: {}", error(&typo));
    }
    assert!(!error("frobnicate").contains("did you mean"));
}

#[test]
fn every_option_is_declared_once_and_taken() {
    let names: Vec<&str> = COMMANDS.iter().map(|command| command.name).collect();
    for (index, command) in COMMANDS.iter().enumerate() {
        assert!(!names[..index].contains(&command.name), "{} twice", command.name);
        for flag in command.flags {
            assert!(FLAGS.iter().any(|known| known.is(flag)), "{}", flag.long);
            assert!(
                !EVERY.iter().any(|every| every.is(flag)),
                "{} listed by {}",
                flag.long,
                command.name
            );
        }
    }
    for (index, flag) in FLAGS.iter().enumerate() {
        assert!(
            !FLAGS[..index].iter().any(|earlier| earlier.is(flag)),
            "{}",
            flag.long
        );
        assert!(
            COMMANDS.iter().any(|command| command.takes(flag)),
            "nothing takes {}",
            flag.long
        );
    }
}

#[test]
fn each_command_lists_only_its_own_options() {
    let ci = help("ci --help");
    assert!(!ci.contains("--builder") && ci.contains("--installer"), "{ci}");
    let build = help("build --help");
    assert!(build.contains("--builder") && build.contains("--json"), "{build}");
    assert!(error("ci --json").contains("`ci` takes no --json"));
    assert!(error("build --open").contains("`build` takes no --open"));
    assert!(error("lock --runner host").contains("`lock` takes no --runner"));
}

#[test]
fn typed_arguments() {
    let args = NamesArgs::from(given(
        "build-layers core --jobs 3 --builder=host --arch arm64 --json sms",
    ));
    assert_eq!(args.names, ["core", "sms"]);
    assert_eq!(args.common.jobs, Some(3));
    assert_eq!(args.common.overrides.builder, Some(BuilderChoice::Host));
    assert_eq!(args.common.overrides.arch, Some(Arch::Arm64));
    assert!(args.common.json);
    let invoke = InvokeArgs::from(given(
        "invoke auth --event e.json --env A=1 --env B=2 --layer x=x.zip",
    ));
    assert_eq!(invoke.functions, ["auth"]);
    assert!(!invoke.all);
    assert_eq!(invoke.event.as_deref(), Some("e.json"));
    assert_eq!(
        (invoke.env, invoke.layers),
        (vec!["A=1".into(), "B=2".into()], vec!["x=x.zip".into()])
    );
    let lock = LockArgs::from(given("lock core --check --upgrade-package a --upgrade-package b"));
    assert_eq!(lock.profiles, ["core"]);
    assert!(lock.check && !lock.upgrade);
    assert_eq!(lock.upgrade_packages, ["a", "b"]);
    assert!(ReportArgs::from(given("report --open")).open);
    assert!(!ReportArgs::from(given("report")).open);
    let prune = PruneCacheArgs::from(given("prune-cache --max-size=1GiB"));
    assert_eq!(prune.max_size.as_deref(), Some("1GiB"));
    assert_eq!(PruneCacheArgs::from(given("prune-cache")).max_size, None);
    assert!(error("prune-cache --json").contains("`prune-cache` takes no --json"));
}
