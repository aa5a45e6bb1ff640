//! `cargo xtask smoke [FUNCTION...]`: imports each handler as Lambda
//! would, from its packaged ZIP and layers (brought up to date first).

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::drive::{drive, Finished};
use crate::error::UsageError;
use crate::graph::Kind;
use crate::progress::Verbosity;
use crate::report::render;

pub fn run(args: NamesArgs) -> Result<()> {
    let (common, names) = (&args.common, &args.names);
    drive(
        common,
        |config, graph| {
            if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
                let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
                let message = format!("unknown function `{unknown}` (configured: {})", known.join(", "));
                return Err(UsageError::new(message).into());
            }
            Ok(graph
                .of_kind(&[Kind::Smoke])
                .into_iter()
                .filter(|&index| names.is_empty() || names.contains(&graph.nodes[index].name))
                .collect())
        },
        |session, graph, outcome| {
            let (_, mut outcomes) = render::verdicts(graph, &outcome.statuses);
            outcomes.retain(|name, _| names.is_empty() || names.contains(name));
            if common.json {
                let value = serde_json::json!({ "functions": outcomes });
                session.printer.out(&serde_json::to_string_pretty(&value)?);
            }
            let skipped: std::collections::BTreeSet<&String> = outcomes
                .values()
                .filter_map(|outcome| outcome.skipped.as_ref())
                .collect();
            if skipped.len() == 1 && outcomes.values().all(|outcome| outcome.skipped.is_some()) {
                let reason = skipped.into_iter().next().expect("one reason");
                session.printer.warn(&format!("smoke: skipped: {reason}"));
            }
            let quiet = common.verbosity == Verbosity::Quiet;
            eprint!("{}", render::smoke_table(&outcomes, quiet));
            let failed = outcomes.values().filter(|outcome| outcome.failed()).count();
            if failed > 0 {
                session.printer.error(&format!(
                    "{failed} of {} function(s) failed the smoke test",
                    outcomes.len()
                ));
            }
            Ok(Finished { failed: failed > 0 })
        },
    )
}
