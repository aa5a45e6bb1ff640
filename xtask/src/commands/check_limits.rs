//! `cargo xtask check-limits`: every function together with its layers,
//! checked against AWS's limits, the team's budgets and its own imports.
//! What it checks is brought up to date first.

use anyhow::Result;

use crate::cli::Common;
use crate::commands::drive::{drive, Finished};
use crate::graph::Kind;
use crate::{report, report::render};

pub fn run(common: Common) -> Result<()> {
    drive(
        &common,
        |_, graph| Ok(graph.of_kind(&[Kind::Check])),
        |session, graph, outcome| {
            let (reports, _) = render::verdicts(graph, &outcome.statuses);
            let ok =
                reports.values().all(|report| report.ok) && reports.len() == session.config.functions.len();
            if common.json {
                let value = serde_json::json!({ "ok": ok, "functions": reports });
                session.printer.out(&serde_json::to_string_pretty(&value)?);
            }
            let mut text = render::check_reports(session.config, &reports);
            if outcome.missing.is_empty() {
                text.push_str(&format!("report: {}\n", report::RELATIVE_PATH));
            }
            if ok {
                session.printer.info(&text);
            } else {
                eprint!("{text}");
            }
            Ok(Finished { failed: !ok })
        },
    )
}
