//! `cargo xtask check-limits`: every function together with its layers,
//! checked against AWS's limits, the team's budgets and its own imports.
//! What it checks is brought up to date first.

use anyhow::Result;

use crate::cli::Common;
use crate::commands::graph_run::Repo;
use crate::graph::Kind;
use crate::{report, report::render};

pub fn run(common: Common) -> Result<()> {
    let repo = Repo::load(&common)?;
    let opened = repo.open()?;
    let checks = opened.graph.of_kind(&[Kind::Check]);
    let Some(ran) = opened.run(&checks)? else {
        return Ok(());
    };
    let (reports, _) = render::verdicts(&ran.graph, &ran.outcome.statuses);
    let ok = reports.values().all(|report| report.ok) && reports.len() == repo.config.functions.len();
    if common.json {
        let value = serde_json::json!({ "ok": ok, "functions": reports });
        repo.printer.out(&serde_json::to_string_pretty(&value)?);
    }
    let mut text = render::check_reports(&repo.config, &reports);
    if ran.outcome.missing.is_empty() {
        text.push_str(&format!("report: {}\n", report::RELATIVE_PATH));
    }
    if ok {
        repo.printer.info(&text);
    } else {
        eprint!("{text}");
    }
    ran.finish(!ok)
}
