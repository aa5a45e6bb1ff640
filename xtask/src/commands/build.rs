//! `cargo xtask build`: the main job, every node of the graph.

use anyhow::Result;

use crate::cli::Common;
use crate::commands::drive::{drive, Finished};
use crate::progress::Verbosity;
use crate::{report, report::render};

pub fn run(common: Common) -> Result<()> {
    drive(
        &common,
        |_, graph| Ok((0..graph.nodes.len()).collect()),
        |session, graph, outcome| {
            let config = session.config;
            let printer = session.printer;
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
            let ran = outcome.built.len();
            if ran == 0 && failures.is_empty() && !outcome.dist.written.is_empty() {
                // Settings such as `memory` reach only the manifest.
                printer.info(&format!(
                    "build: no step ran ({} steps); wrote {}",
                    graph.nodes.len(),
                    outcome.dist.written.join(", ")
                ));
            } else if ran == 0 && failures.is_empty() {
                printer.info(&format!("build: up to date ({} steps)", graph.nodes.len()));
            } else {
                printer.info(&format!("build: {ran} of {} steps ran", graph.nodes.len()));
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
            Ok(Finished { failed: !ok })
        },
    )
}
