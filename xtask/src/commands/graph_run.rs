//! What every command that runs the build graph does around its targets,
//! as values: the configuration read once (`Repo::load`), the repository
//! locked and the graph planned (`Repo::open`), then, for the targets the
//! command chose, either the plan printed (`--dry-run`, touching nothing)
//! or the run, with `dist/` made to match it and the report written last
//! (`Opened::run`). The command shows the outcome, then `Ran::finish`
//! says whether the command failed.

use anyhow::Result;

use crate::cli::Common;
use crate::config::Config;
use crate::graph::{self, dist, run, Graph, Session, Settings, Status};
use crate::ground::atomic;
use crate::ground::progress::{Printer, Verbosity};
use crate::store::inputs::LazyRecords;
use crate::store::run_lock::{self, RepoLock};
use crate::{report, report::render};

/// The repository as one command sees it: its configuration, its printer
/// and what it asks of the run.
pub struct Repo {
    pub config: Config,
    pub printer: Printer,
    settings: Settings,
    json: bool,
}

/// The planned graph, the repository locked (unless a dry run).
pub struct Opened<'a> {
    pub graph: Graph,
    session: Session<'a>,
    repo: &'a Repo,
    lock: Option<RepoLock>,
}

/// A run's outcome; the repository stays locked until it is finished.
pub struct Ran<'a> {
    pub graph: Graph,
    pub outcome: run::Outcome,
    pub session: Session<'a>,
    _lock: RepoLock,
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

impl Repo {
    /// Reads the configuration. When it is invalid, what was built from it
    /// is removed from `dist/` (under the lock: a run still going must not
    /// lose files under it), unless this is a dry run.
    pub fn load(common: &Common) -> Result<Repo> {
        let printer = Printer::new(common.verbosity);
        let (workspace, config) = Config::load_in_workspace(&common.overrides);
        let config = match config {
            Ok(config) => config,
            Err(err) => {
                if let (Some((root, target_dir)), false) = (workspace, common.dry_run) {
                    let _lock = run_lock::acquire(&target_dir.join(crate::config::CACHE_DIR), &printer)?;
                    clear_dist(&root.join("dist"), &printer);
                }
                return Err(err);
            }
        };
        Ok(Repo {
            config,
            printer,
            settings: settings(common),
            json: common.json,
        })
    }

    /// Plans the graph: for a run, under the lock and after the leftovers of
    /// interrupted runs are swept; a dry run probes no tool and locks nothing.
    pub fn open(&self) -> Result<Opened<'_>> {
        let (config, printer) = (&self.config, &self.printer);
        if self.settings.dry_run {
            let session = Session::new(config, self.settings.clone(), printer)?;
            let graph = graph::plan::plan(&session)?;
            return Ok(Opened {
                graph,
                session,
                repo: self,
                lock: None,
            });
        }
        let lock = run_lock::acquire(&config.cache_dir(), printer)?;
        sweep(config);
        let session = Session::new(config, self.settings.clone(), printer)?;
        let graph = match graph::plan::plan(&session) {
            Ok(graph) => graph,
            Err(err) => {
                if crate::ground::error::is_configuration(&err) {
                    clear_dist(&config.dist_dir(), printer);
                }
                session.tools.save()?;
                return Err(err);
            }
        };
        session.tools.save()?;
        for note in &graph.notes {
            printer.detail(note);
        }
        Ok(Opened {
            graph,
            session,
            repo: self,
            lock: Some(lock),
        })
    }
}

impl<'a> Opened<'a> {
    /// Brings `targets` up to date and writes `dist/` (the report last),
    /// saying what failed, did not run or was removed. `None`: a dry run,
    /// whose plan is printed instead.
    pub fn run(self, targets: &[usize]) -> Result<Option<Ran<'a>>> {
        let Some(lock) = self.lock else {
            dry_run(self.repo, &self.session, &self.graph, targets)?;
            return Ok(None);
        };
        let (session, graph) = (self.session, self.graph);
        let (config, printer) = (session.config, session.printer);
        let mut outcome = match run::execute(&session, &graph, targets) {
            Ok(outcome) => outcome,
            Err(err) => {
                // It may describe a manifest this run replaced.
                let _ = std::fs::remove_file(config.report_path());
                return Err(err);
            }
        };
        session.tools.save()?;
        write_report(config, &graph, &mut outcome)?;
        for (_, message) in &outcome.failures() {
            printer.error(message);
        }
        for (index, why) in outcome.blocked() {
            printer.detail(&format!("{}: not run: {why}", graph.nodes[index].id()));
        }
        for removed in &outcome.dist.removed {
            printer.detail(&format!("removed {removed}"));
        }
        if !outcome.missing.is_empty() && outcome.failures().is_empty() {
            printer.info(&format!(
                "dist/manifest.json is not written until every product is built (missing: {}; run cargo xtask build)",
                outcome.missing.join(", ")
            ));
        }
        Ok(Some(Ran {
            graph,
            outcome,
            session,
            _lock: lock,
        }))
    }
}

impl Ran<'_> {
    /// What `build` shows: the verdicts, what ran and where the report is;
    /// whether all is well (`serve` reloads only then).
    pub fn show(&self, repo: &Repo, common: &Common) -> Result<bool> {
        let (config, printer, graph, outcome) = (&repo.config, &repo.printer, &self.graph, &self.outcome);
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

    /// The command's answer once it has shown the outcome: an error when a
    /// step failed or what it showed did (`failed`).
    pub fn finish(self, failed: bool) -> Result<()> {
        let failures = self.outcome.failures();
        if !failures.is_empty() {
            let ran = self.outcome.built.len() + failures.len();
            self.session
                .printer
                .error(&format!("{} of {ran} step(s) failed", failures.len()));
        }
        if !failures.is_empty() || failed {
            return Err(crate::ground::error::Failed {
                usage: self.outcome.usage_failure,
            }
            .into());
        }
        Ok(())
    }
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
fn dry_run(repo: &Repo, session: &Session, graph: &Graph, targets: &[usize]) -> Result<()> {
    let (config, printer) = (&repo.config, &repo.printer);
    for note in &graph.notes {
        printer.info(note);
    }
    let records = LazyRecords::new(&config.cache_dir());
    let mut statuses: Vec<Option<Status>> = vec![None; graph.nodes.len()];
    for index in 0..graph.nodes.len() {
        let force = repo.settings.force;
        statuses[index] = Some(graph::evaluate(
            graph,
            index,
            &statuses,
            &session.store,
            force,
            &records,
        ));
    }
    let (_, missing) = dist::manifest(config, graph, &statuses)?;
    let removed = dist::strays(config, graph);
    if repo.json {
        let mut value = render::plan_json(graph, &statuses, targets, &removed);
        value["manifest_complete"] = missing.is_empty().into();
        printer.out(&serde_json::to_string_pretty(&value)?);
    } else {
        let mut text = render::plan_lines(graph, &statuses, targets);
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
        cache.join(crate::lambda::layout::LAID_OUT_DIR),
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
    // Installs made ahead for a run that did not take them.
    let _ = std::fs::remove_dir_all(cache.join(crate::steps::install::AHEAD_DIR));
}
