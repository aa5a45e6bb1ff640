//! `cargo xtask invoke FUNCTION [--event FILE|-]` and `invoke --all`: runs
//! the packaged functions (brought up to date first) under AWS's runtime
//! interface client and sends them events; `--all` sends every sample event
//! of `lambdas/events/` against local fakes and checks the expected status.

use std::time::Instant;

use anyhow::Result;

use crate::cli::args::InvokeArgs;
use crate::commands::graph_run::Repo;
use crate::config::manifest::BuiltView;
use crate::ground::progress::Printer;
use crate::lambda::invoke::{self, Answered, Here, Invoked};
use crate::lambda::request::{Asked, Request};
use crate::lambda::samples::Verdict;
use crate::lambda::sandbox::Failure;
use crate::report::render;

pub fn run(args: InvokeArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let opened = repo.open()?;
    let asked = Asked {
        functions: &args.functions,
        all: args.all,
        event: args.event.as_deref(),
        env: &args.env,
        layers: &args.layers,
    };
    let request = Request::new(&repo.config, &asked)?;
    // Every product: dist/manifest.json is written only whole.
    let products: Vec<usize> = (0..opened.graph.nodes.len())
        .filter(|&index| opened.graph.nodes[index].kind.is_product())
        .collect();
    let Some(ran) = opened.run(&products)? else {
        return Ok(());
    };
    if !ran.outcome.missing.is_empty() {
        return ran.finish(true);
    }
    let built = BuiltView::new(&ran.outcome.manifest, &repo.config);
    let here = Here {
        config: &repo.config,
        sh: &ran.session.sh,
        tools: &ran.session.tools,
        installer: args.common.installer,
        printer: &repo.printer,
        runners: &ran.graph.runners,
        built: &built,
    };
    let failed = match invoke::invoke(&here, &request)? {
        Invoked::One { function, answered } => show_one(&repo.printer, &function, answered)?,
        Invoked::All {
            rows,
            skipped,
            started,
        } => show_all(&repo.printer, &rows, &skipped, started),
    };
    ran.finish(failed)
}

/// The response on stdout, Lambda's REPORT line on stderr; whether the
/// function failed.
fn show_one(printer: &Printer, function: &str, answered: Result<Answered, Failure>) -> Result<bool> {
    let result = answered.and_then(|answered| {
        eprintln!("{}", answered.report_line);
        answered.result
    });
    match result {
        Ok(body) => {
            printer.out(&String::from_utf8_lossy(&body));
            Ok(false)
        }
        Err(failure) => {
            printer.out(&serde_json::to_string(&failure)?);
            printer.error(&format!(
                "{function}: {}: {}",
                failure.error_type, failure.message
            ));
            Ok(true)
        }
    }
}

/// The table of every sample event, each error, and the count; whether
/// any answered otherwise than expected.
fn show_all(printer: &Printer, rows: &[Verdict], skipped: &[String], started: Instant) -> bool {
    let failed = rows.iter().filter(|row| row.error.is_some()).count();
    printer.info(&render::invoke_table(rows));
    for row in rows.iter().filter(|row| row.error.is_some()) {
        printer.error(&format!(
            "{} {}: {}",
            row.function,
            row.event,
            row.error.as_deref().unwrap_or_default()
        ));
    }
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped: {} (cannot run here)", skipped.join(", "))
    };
    printer.info(&format!(
        "invoke: {} of {} event(s) answered as expected in {:.1?}{skipped_note}",
        rows.len() - failed,
        rows.len(),
        started.elapsed()
    ));
    failed > 0
}
