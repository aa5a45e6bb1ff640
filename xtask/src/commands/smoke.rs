//! `cargo xtask smoke [FUNCTION...]`: imports each handler as Lambda
//! would, from its packaged ZIP and layers (brought up to date first).

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::graph_run::Repo;
use crate::graph::Kind;
use crate::ground::error::UsageError;
use crate::ground::progress::Verbosity;
use crate::report::render;

pub fn run(args: NamesArgs) -> Result<()> {
    let names = &args.names;
    let repo = Repo::load(&args.common)?;
    let opened = repo.open()?;
    let config = &repo.config;
    if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
        let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
        let message = format!("unknown function `{unknown}` (configured: {})", known.join(", "));
        return Err(UsageError::new(message).into());
    }
    let chosen = |name: &String| names.is_empty() || names.contains(name);
    let targets: Vec<usize> = opened
        .graph
        .of_kind(&[Kind::Smoke])
        .into_iter()
        .filter(|&index| chosen(&opened.graph.nodes[index].name))
        .collect();
    let Some(ran) = opened.run(&targets)? else {
        return Ok(());
    };
    let (_, mut outcomes) = render::verdicts(&ran.graph, &ran.outcome.statuses);
    outcomes.retain(|name, _| chosen(name));
    if args.common.json {
        let value = serde_json::json!({ "functions": outcomes });
        repo.printer.out(&serde_json::to_string_pretty(&value)?);
    }
    let skipped: std::collections::BTreeSet<&String> = outcomes
        .values()
        .filter_map(|outcome| outcome.skipped.as_ref())
        .collect();
    if skipped.len() == 1 && outcomes.values().all(|outcome| outcome.skipped.is_some()) {
        let reason = skipped.into_iter().next().expect("one reason");
        repo.printer.warn(&format!("smoke: skipped: {reason}"));
    }
    let quiet = args.common.verbosity == Verbosity::Quiet;
    eprint!("{}", render::smoke_table(&outcomes, quiet));
    let failed = outcomes.values().filter(|outcome| outcome.failed()).count();
    if failed > 0 {
        repo.printer.error(&format!(
            "{failed} of {} function(s) failed the smoke test",
            outcomes.len()
        ));
    }
    ran.finish(failed > 0)
}
