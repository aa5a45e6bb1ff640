//! `cargo xtask build`: the main job, every node of the graph.

use anyhow::Result;

use crate::cli::Common;
use crate::commands::graph_run::{Ran, Repo};
use crate::progress::Verbosity;
use crate::{report, report::render};

pub fn run(common: Common) -> Result<()> {
    let repo = Repo::load(&common)?;
    let opened = repo.open()?;
    let every: Vec<usize> = (0..opened.graph.nodes.len()).collect();
    let Some(ran) = opened.run(&every)? else {
        return Ok(());
    };
    let ok = show(&repo, &ran, &common)?;
    ran.finish(!ok)
}

/// The verdicts, what ran and where the report is; whether all is well.
fn show(repo: &Repo, ran: &Ran, common: &Common) -> Result<bool> {
    let (config, printer, graph, outcome) = (&repo.config, &repo.printer, &ran.graph, &ran.outcome);
    let (reports, outcomes) = render::verdicts(graph, &outcome.statuses);
    let checks_ok = reports.values().all(|report| report.ok);
    let smokes_ok = outcomes.values().all(|outcome| !outcome.failed());
    let failures = outcome.failures();
    let ok = checks_ok && smokes_ok && failures.is_empty();
    if common.json {
        let verdicts: serde_json::Map<String, serde_json::Value> = config
            .functions
            .keys()
            .map(|name| {
                let value = serde_json::json!({
                    "check": reports.get(name),
                    "smoke": outcomes.get(name),
                });
                (name.clone(), value)
            })
            .collect();
        let failed: serde_json::Map<String, serde_json::Value> = failures
            .iter()
            .map(|(index, message)| (graph.nodes[*index].id(), message.clone().into()))
            .collect();
        let value = serde_json::json!({
            "ok": ok,
            "verdicts": verdicts,
            "failed": failed,
            "written": outcome.dist.written,
            "removed": outcome.dist.removed,
        });
        printer.out(&serde_json::to_string_pretty(&value)?);
    }
    let ran_steps = outcome.built.len();
    let steps = graph.nodes.len();
    if ran_steps == 0 && failures.is_empty() && !outcome.dist.written.is_empty() {
        // Settings such as `memory` reach only the manifest.
        let written = outcome.dist.written.join(", ");
        printer.info(&format!("build: no step ran ({steps} steps); wrote {written}"));
    } else if ran_steps == 0 && failures.is_empty() {
        printer.info(&format!("build: up to date ({steps} steps)"));
    } else {
        printer.info(&format!("build: {ran_steps} of {steps} steps ran"));
    }
    if checks_ok {
        for warning in render::check_warnings(&reports) {
            printer.warn(&warning);
        }
        printer.info(&render::check_summary(&reports));
    } else {
        eprint!("{}", render::check_reports(config, &reports));
    }
    if smokes_ok {
        printer.info(&render::smoke_summary(&outcomes));
    } else {
        let quiet = common.verbosity == Verbosity::Quiet;
        eprint!("{}", render::smoke_table(&outcomes, quiet));
    }
    if outcome.missing.is_empty() {
        printer.info(&format!("report: {}", report::RELATIVE_PATH));
    }
    Ok(ok)
}
