//! `cargo xtask invoke FUNCTION [--event FILE|-]` and `invoke --all`: runs
//! the packaged functions (brought up to date first) under AWS's runtime
//! interface client and sends them events; `--all` sends every sample event
//! of `lambdas/events/` against local fakes and checks the expected status.

use std::cell::OnceCell;
use std::time::Instant;

use anyhow::Result;

use crate::cli::args::InvokeArgs;
use crate::commands::drive::{drive, Finished};
use crate::config::manifest::BuiltView;
use crate::lambda::invoke::{self, Answered, Here, Invoked};
use crate::lambda::request::{Asked, Request};
use crate::lambda::samples::Verdict;
use crate::lambda::sandbox::Failure;
use crate::progress::Printer;
use crate::report::render;

pub fn run(args: InvokeArgs) -> Result<()> {
    let (common, names) = (&args.common, &args.functions);
    let request: OnceCell<Request> = OnceCell::new();
    drive(
        common,
        |config, graph| {
            let asked = Asked {
                functions: names,
                all: args.all,
                event: args.event.as_deref(),
                env: &args.env,
                layers: &args.layers,
            };
            let _ = request.set(Request::new(config, &asked)?);
            // Every product: dist/manifest.json is written only whole.
            Ok(graph
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, node)| node.kind.is_product())
                .map(|(index, _)| index)
                .collect())
        },
        |session, graph, outcome| {
            let request = request.get().expect("parsed before the run");
            if !outcome.missing.is_empty() {
                return Ok(Finished { failed: true });
            }
            let built = BuiltView::new(&outcome.manifest, session.config);
            let here = Here {
                config: session.config,
                sh: &session.sh,
                tools: &session.tools,
                installer: session.settings.installer,
                printer: session.printer,
                runners: &graph.runners,
                built: &built,
            };
            let printer = session.printer;
            let failed = match invoke::invoke(&here, request)? {
                Invoked::One { function, answered } => show_one(printer, &function, answered)?,
                Invoked::All {
                    rows,
                    skipped,
                    started,
                } => show_all(printer, &rows, &skipped, started),
            };
            Ok(Finished { failed })
        },
    )
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
