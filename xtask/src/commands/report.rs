//! `cargo xtask report [--open]`: dist/report.html, written again from what
//! is built. Its target set is what the page shows, which is every node:
//! the products for the manifest, and each function's check and smoke
//! test for the figures. The run writes the page; this shows where it is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Result;

use crate::cli::args::ReportArgs;
use crate::commands::graph_run::Repo;
use crate::ground::progress::Printer;
use crate::report;

pub fn run(args: ReportArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let opened = repo.open()?;
    let every: Vec<usize> = (0..opened.graph.nodes.len()).collect();
    let Some(ran) = opened.run(&every)? else {
        return Ok(());
    };
    let (printer, outcome) = (&repo.printer, &ran.outcome);
    if !outcome.missing.is_empty() {
        // Only a failed step leaves the manifest incomplete here, and the
        // run has said which.
        printer.error(&format!(
            "{} not written: dist/manifest.json is not whole",
            report::RELATIVE_PATH
        ));
        return ran.finish(true);
    }
    let functions = outcome.manifest.functions.len();
    if args.common.json {
        let written = outcome
            .dist
            .written
            .iter()
            .any(|path| path == report::RELATIVE_PATH);
        let value = serde_json::json!({
            "report": report::RELATIVE_PATH,
            "written": written,
            "functions": functions,
        });
        printer.out(&serde_json::to_string_pretty(&value)?);
    }
    printer.info(&format!(
        "report: {} ({functions} function(s))",
        report::RELATIVE_PATH
    ));
    if args.open {
        open(&repo.config.report_path(), printer);
    }
    ran.finish(false)
}
/// Opens the page with the desktop's opener, or says where it is.
fn open(path: &Path, printer: &Printer) {
    let Some(opener) = ["xdg-open", "open"].into_iter().find_map(on_path) else {
        printer.info(&format!(
            "no xdg-open or open here: open {} in a browser",
            path.display()
        ));
        return;
    };
    let status = Command::new(&opener)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => printer.warn(&format!(
            "{} {} exited with {status}: open {} in a browser",
            opener.display(),
            path.display(),
            path.display()
        )),
        Err(err) => printer.warn(&format!(
            "could not run {}: {err}; open {} in a browser",
            opener.display(),
            path.display()
        )),
    }
}

/// `program` in a folder of `PATH`, when it is there and executable.
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
        })
}
