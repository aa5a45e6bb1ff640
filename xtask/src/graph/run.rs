//! Running a plan: the stale nodes a command needs, dependencies first and
//! independent ones in parallel; every output written whole into the store;
//! a damaged entry discarded with a warning and rebuilt; then `dist/` made
//! to match the graph before the checks and smokes read it.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::batch::run_batch;
use super::dist::{self, Changes};
use super::{evaluate, full_inputs, Graph, Kind, Session, Status};
use crate::config::manifest::Manifest;
use crate::config::Platform;
use crate::ground::error::is_usage;
use crate::lambda::runtime_env::{self, Runner};
use crate::store::inputs::LazyRecords;
use crate::store::tools::Planned;

pub struct Outcome {
    /// Every node's status after the run (`None`: not reached).
    pub statuses: Vec<Option<Status>>,
    /// The nodes this run built, in order.
    pub built: Vec<usize>,
    /// A failure was caused by the configuration (exit 2, not 1).
    pub usage_failure: bool,
    /// What is built, whole or not.
    pub manifest: Manifest,
    /// The products the manifest lacks (empty: it was written).
    pub missing: Vec<String>,
    pub dist: Changes,
}

impl Outcome {
    pub fn failures(&self) -> Vec<(usize, String)> {
        self.statuses
            .iter()
            .enumerate()
            .filter_map(|(index, status)| match status {
                Some(Status::Failed(message)) => Some((index, message.clone())),
                _ => None,
            })
            .collect()
    }

    /// Nodes that did not run because one they need failed.
    pub fn blocked(&self) -> Vec<(usize, String)> {
        self.statuses
            .iter()
            .enumerate()
            .filter_map(|(index, status)| match status {
                Some(Status::Blocked(why)) => Some((index, why.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Brings `targets` (and what they need) up to date; what their smoke
/// tests will need from the network is fetched meanwhile.
pub fn execute(session: &Session, graph: &Graph, targets: &[usize]) -> Result<Outcome> {
    let closure = graph.closure(targets);
    std::thread::scope(|scope| {
        for platform in smoke_platforms(session, graph, &closure) {
            let (sh, config) = (session.sh.clone(), session.config.at(platform));
            let progress = session.printer.progress();
            let (tools, choice) = (&session.tools, session.settings.installer);
            scope.spawn(move || runtime_env::prefetch(&sh, &config, tools, choice, progress));
        }
        execute_closure(session, graph, closure)
    })
}

/// The platforms whose smoke tests `closure` holds and can run here.
fn smoke_platforms(session: &Session, graph: &Graph, closure: &BTreeSet<usize>) -> BTreeSet<Platform> {
    if session.settings.dry_run {
        return BTreeSet::new();
    }
    closure
        .iter()
        .map(|&index| &graph.nodes[index])
        .filter(|node| node.kind == Kind::Smoke)
        .filter_map(|node| session.config.functions.get(&node.name))
        .map(|function| session.config.platform_of(function))
        .filter(|platform| {
            matches!(
                graph.runners.get(platform),
                Some(Planned::Ready(runner)) if !matches!(runner, Runner::Skip(_))
            )
        })
        .collect()
}

fn execute_closure(session: &Session, graph: &Graph, closure: BTreeSet<usize>) -> Result<Outcome> {
    let mut run = Run {
        session,
        graph,
        closure,
        records: LazyRecords::new(&session.config.cache_dir()),
        statuses: vec![None; graph.nodes.len()],
        built: Vec::new(),
        usage_failure: false,
    };
    let (products, verdicts): (Vec<usize>, Vec<usize>) =
        (0..graph.nodes.len()).partition(|&index| graph.nodes[index].kind.is_product());

    run.phase(&products, None)?;
    let (manifest, missing) = dist::manifest(session.config, graph, &run.statuses)?;
    let changes = dist::materialise(
        session.config,
        graph,
        &run.statuses,
        &manifest,
        missing.is_empty(),
    )?;
    run.phase(&verdicts, Some(&manifest))?;

    let Run {
        records,
        statuses,
        built,
        usage_failure,
        ..
    } = run;
    save_records(session, graph, records, &built, &statuses)?;
    if !built.is_empty() {
        let nodes: Vec<(String, &[usize])> = graph
            .nodes
            .iter()
            .map(|node| (node.id(), node.deps.as_slice()))
            .collect();
        let cached = statuses
            .iter()
            .enumerate()
            .filter(|(index, status)| matches!(status, Some(Status::Fresh { .. })) && !built.contains(index))
            .count();
        for line in session.timeline.report(&nodes, cached, &built) {
            session.printer.detail(&line);
        }
    }
    Ok(Outcome {
        statuses,
        built,
        usage_failure,
        manifest,
        missing,
        dist: changes,
    })
}

/// A run in progress: where each node stands so far.
struct Run<'r> {
    session: &'r Session<'r>,
    graph: &'r Graph,
    /// The targets and everything they depend on: what this run may build.
    closure: BTreeSet<usize>,
    records: LazyRecords,
    statuses: Vec<Option<Status>>,
    built: Vec<usize>,
    usage_failure: bool,
}

impl Run<'_> {
    /// Runs what `nodes` need, batch after batch, until every one of them
    /// that can be settled is.
    fn phase(&mut self, nodes: &[usize], manifest: Option<&Manifest>) -> Result<()> {
        loop {
            let (runnable, progressed) = self.settle(nodes)?;
            if runnable.is_empty() {
                if !progressed {
                    return Ok(());
                }
                continue;
            }
            let results = run_batch(
                self.session,
                self.graph,
                &runnable,
                &self.statuses,
                &self.closure,
                manifest,
            )?;
            for (index, result) in results {
                let status = match result {
                    Ok((key, entry)) => {
                        self.built.push(index);
                        Status::Fresh { key, entry }
                    }
                    Err(err) => {
                        self.usage_failure |= is_usage(&err);
                        Status::Failed(crate::ground::error::format_chain(&err))
                    }
                };
                self.statuses[index] = Some(status);
            }
        }
    }

    /// Evaluates each node of `nodes` whose dependencies are settled, in
    /// order: the ones to run now, and whether any was evaluated.
    fn settle(&mut self, nodes: &[usize]) -> Result<(Vec<usize>, bool)> {
        let mut runnable = Vec::new();
        let mut progressed = false;
        for &index in nodes {
            if self.statuses[index].is_some() || !self.deps_final(index) {
                continue;
            }
            progressed = true;
            if self.settle_node(index)? {
                runnable.push(index);
            }
        }
        Ok((runnable, progressed))
    }

    /// Whether every dependency of `index` stands where this run leaves it.
    fn deps_final(&self, index: usize) -> bool {
        self.graph.nodes[index]
            .deps
            .iter()
            .all(|&dep| match &self.statuses[dep] {
                None => false,
                Some(Status::Stale { .. }) => !self.closure.contains(&dep),
                Some(_) => true,
            })
    }

    /// Where node `index` stands, recorded: a damaged entry discarded with
    /// a warning, a rehashed one restamped. Whether it runs now.
    fn settle_node(&mut self, index: usize) -> Result<bool> {
        let (session, node) = (self.session, &self.graph.nodes[index]);
        let wanted = self.closure.contains(&index);
        let force = session.settings.force && wanted;
        let status = evaluate(
            self.graph,
            index,
            &self.statuses,
            &session.store,
            force,
            &self.records,
        );
        match &status {
            Status::Stale {
                damaged: true,
                reason,
                key: Some(key),
            } => {
                let kind = node.kind.store_dir();
                session.printer.warn(&format!(
                    "{}: discarding the cache entry {}: {}",
                    node.id(),
                    session.store.entry_dir(kind, key).display(),
                    reason.trim_start_matches("cache entry damaged: ")
                ));
                session.store.discard(kind, key)?;
            }
            Status::Fresh { entry, .. } if entry.rehashed => {
                let _ = session.store.restamp(entry);
            }
            Status::Stale {
                key: None, reason, ..
            } if wanted && node.pending.is_some() => {
                bail!("{}: {reason} (internal: a run must know its tools)", node.id());
            }
            _ => {}
        }
        let run = wanted && matches!(status, Status::Stale { key: Some(_), .. });
        if let (true, Status::Stale { reason, .. }) = (run, &status) {
            session.printer.detail(&format!("{}: {reason}", node.id()));
        }
        self.statuses[index] = Some(status);
        Ok(run)
    }
}

/// The full inputs of every node this run built, kept for the next run to
/// say what changed; the records of nodes no longer in the graph dropped.
fn save_records(
    session: &Session,
    graph: &Graph,
    records: LazyRecords,
    built: &[usize],
    statuses: &[Option<Status>],
) -> Result<()> {
    if built.is_empty() {
        return Ok(());
    }
    let mut records = records.into_inner();
    for &index in built {
        records
            .0
            .insert(graph.nodes[index].id(), full_inputs(graph, index, statuses));
    }
    let ids: BTreeSet<String> = graph.nodes.iter().map(|node| node.id()).collect();
    records.0.retain(|id, _| ids.contains(id));
    records.save(&session.config.cache_dir())
}
