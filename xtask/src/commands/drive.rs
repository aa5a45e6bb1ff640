//! What every command does around its target set: the configuration read
//! once, the repository locked, the graph planned, and then either the plan
//! printed (`--dry-run`, touching nothing) or run, with `dist/` made to
//! match it (the report last, from the verdicts of the run). Commands only
//! choose their targets and show their results.

use anyhow::Result;

use crate::cli::Common;
use crate::config::Config;
use crate::graph::{self, dist, run, Graph, LazyRecords, Session, Settings, Status};
use crate::progress::Printer;
use crate::{atomic, report, report::render, store::run_lock};

/// A command's answer after a run: whether what it showed failed.
pub struct Finished {
    pub failed: bool,
}

/// What a command of the graph asks of its run.
pub fn settings(common: &Common) -> Settings {
    Settings {
        force: common.force,
        jobs: common.jobs,
        installer: common.installer,
        overrides: common.overrides.clone(),
        dry_run: common.dry_run,
    }
}

/// Plans, then runs `targets` (or prints the plan), then hands the result
/// to `show`.
pub fn drive(
    common: &Common,
    select: impl FnOnce(&Config, &Graph) -> Result<Vec<usize>>,
    show: impl FnOnce(&Session, &Graph, &run::Outcome) -> Result<Finished>,
) -> Result<()> {
    let printer = Printer::new(common.verbosity);
    let (workspace, config) = Config::load_in_workspace(&common.overrides);
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            if let (Some((root, target_dir)), false) = (workspace, common.dry_run) {
                // Under the lock: a run still going must not lose files under it.
                let _lock = run_lock::acquire(&target_dir.join(crate::config::CACHE_DIR), &printer)?;
                clear_dist(&root.join("dist"), &printer);
            }
            return Err(err);
        }
    };
    if common.dry_run {
        return dry_run(&config, common, &printer, select);
    }
    let _lock = run_lock::acquire(&config.cache_dir(), &printer)?;
    sweep(&config);
    let session = Session::new(&config, settings(common), &printer)?;
    let graph = match graph::plan(&session) {
        Ok(graph) => graph,
        Err(err) => {
            if crate::error::is_configuration(&err) {
                clear_dist(&config.dist_dir(), &printer);
            }
            session.tools.save()?;
            return Err(err);
        }
    };
    session.tools.save()?;
    for note in &graph.notes {
        printer.detail(note);
    }
    let targets = select(&config, &graph)?;
    let mut outcome = match run::execute(&session, &graph, &targets) {
        Ok(outcome) => outcome,
        Err(err) => {
            // It may describe a manifest this run replaced.
            let _ = std::fs::remove_file(config.report_path());
            return Err(err);
        }
    };
    session.tools.save()?;
    write_report(&config, &graph, &mut outcome)?;
    let failures = outcome.failures();
    for (_, message) in &failures {
        printer.error(message);
    }
    for (index, why) in outcome.blocked() {
        printer.detail(&format!("{}: not run: {why}", graph.nodes[index].id()));
    }
    for removed in &outcome.dist.removed {
        printer.detail(&format!("removed {removed}"));
    }
    if !outcome.missing.is_empty() && failures.is_empty() {
        printer.info(&format!(
            "dist/manifest.json is not written until every product is built (missing: {}; run cargo xtask build)",
            outcome.missing.join(", ")
        ));
    }
    let finished = show(&session, &graph, &outcome)?;
    if !failures.is_empty() {
        let ran = outcome.built.len() + failures.len();
        printer.error(&format!("{} of {ran} step(s) failed", failures.len()));
    }
    if !failures.is_empty() || finished.failed {
        return Err(crate::error::Failed {
            usage: outcome.usage_failure,
        }
        .into());
    }
    Ok(())
}

/// `dist/report.html`, when the manifest is whole (otherwise `dist/` lost
/// it with the manifest), from the verdicts this run knows: the ones it
/// ran and the ones the store holds for what is built.
fn write_report(config: &Config, graph: &Graph, outcome: &mut run::Outcome) -> Result<()> {
    if !outcome.missing.is_empty() {
        return Ok(());
    }
    let (checks, smokes) = render::verdicts(graph, &outcome.statuses);
    match report::write(config, &outcome.manifest, &checks, &smokes) {
        Ok(true) => outcome.dist.written.push(report::RELATIVE_PATH.to_string()),
        Ok(false) => {}
        Err(err) => {
            // Never one that describes an older build.
            let _ = std::fs::remove_file(config.report_path());
            return Err(err.context(format!("writing {}", report::RELATIVE_PATH)));
        }
    }
    Ok(())
}

/// What no longer matches a valid configuration must not be deployed: a
/// from-scratch build of it would produce nothing, so `dist/` is emptied.
fn clear_dist(dist: &std::path::Path, printer: &Printer) {
    match dist::clear(dist) {
        Ok(removed) if !removed.is_empty() => printer.warn(&format!(
            "removed {} file(s) from dist/: they were built from a configuration that is no longer valid",
            removed.len()
        )),
        Ok(_) => {}
        Err(err) => printer.warn(&format!("could not empty dist/: {err:#}")),
    }
}

/// The plan, printed from the same code that runs it: nothing is created,
/// no process is started, no tool is probed.
fn dry_run(
    config: &Config,
    common: &Common,
    printer: &Printer,
    select: impl FnOnce(&Config, &Graph) -> Result<Vec<usize>>,
) -> Result<()> {
    let session = Session::new(config, settings(common), printer)?;
    let graph = graph::plan(&session)?;
    let targets = select(config, &graph)?;
    for note in &graph.notes {
        printer.info(note);
    }
    let records = LazyRecords::new(&config.cache_dir());
    let mut statuses: Vec<Option<Status>> = vec![None; graph.nodes.len()];
    for index in 0..graph.nodes.len() {
        let force = common.force;
        statuses[index] = Some(graph::evaluate(
            &graph,
            index,
            &statuses,
            &session.store,
            force,
            &records,
        ));
    }
    let (_, missing) = dist::manifest(config, &graph, &statuses)?;
    let removed = dist::strays(config, &graph);
    if common.json {
        let mut value = render::plan_json(&graph, &statuses, &targets, &removed);
        value["manifest_complete"] = missing.is_empty().into();
        printer.out(&serde_json::to_string_pretty(&value)?);
    } else {
        let mut text = render::plan_lines(&graph, &statuses, &targets);
        for stray in &removed {
            text.push_str(&format!("{stray}: would be removed (no longer configured)\n"));
        }
        printer.out(&text);
    }
    Ok(())
}

/// Leftovers of interrupted runs: under the lock, nobody else's.
fn sweep(config: &Config) {
    let cache = config.cache_dir();
    let store = cache.join("store");
    let mut dirs = vec![
        cache.clone(),
        cache.join("tools"),
        cache.join("runtime"),
        cache.join("sandbox"),
        cache.join("imports"),
        cache.join("report"),
        store.clone(),
        config.dist_dir(),
        config.dist_dir().join("layers"),
        config.dist_dir().join("functions"),
    ];
    if let Ok(kinds) = std::fs::read_dir(&store) {
        dirs.extend(kinds.flatten().map(|kind| kind.path()));
    }
    for dir in dirs {
        atomic::sweep_temp(&dir);
    }
}
