//! Running a plan: the stale nodes a command needs, dependencies first and
//! independent ones in parallel; every output written whole into the store;
//! a damaged entry discarded with a warning and rebuilt; then `dist/` made
//! to match the graph before the checks and smokes read it.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

use super::batch::run_batch;
use super::dist::{self, Changes};
use super::{evaluate, full_inputs, Graph, LazyRecords, Session, Status};
use crate::config::manifest::Manifest;
use crate::error::is_usage;

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

/// Brings `targets` (and what they need) up to date.
pub fn execute(session: &Session, graph: &Graph, targets: &[usize]) -> Result<Outcome> {
    let closure = graph.closure(targets);
    let records = LazyRecords::new(&session.config.cache_dir());
    let mut statuses: Vec<Option<Status>> = vec![None; graph.nodes.len()];
    let mut built = Vec::new();
    let mut usage_failure = false;

    let products: Vec<usize> = (0..graph.nodes.len())
        .filter(|&index| graph.nodes[index].kind.is_product())
        .collect();
    let verdicts: Vec<usize> = (0..graph.nodes.len())
        .filter(|&index| !graph.nodes[index].kind.is_product())
        .collect();

    let mut phase =
        |nodes: &[usize], statuses: &mut Vec<Option<Status>>, manifest: Option<&Manifest>| -> Result<()> {
            loop {
                let mut runnable = Vec::new();
                let mut progressed = false;
                for &index in nodes {
                    if statuses[index].is_some() {
                        continue;
                    }
                    let deps_final = graph.nodes[index].deps.iter().all(|&dep| match &statuses[dep] {
                        None => false,
                        Some(Status::Stale { .. }) => !closure.contains(&dep),
                        Some(_) => true,
                    });
                    if !deps_final {
                        continue;
                    }
                    let force = session.settings.force && closure.contains(&index);
                    let status = evaluate(graph, index, statuses, &session.store, force, &records);
                    progressed = true;
                    if let Status::Stale {
                        damaged: true,
                        reason,
                        key: Some(key),
                    } = &status
                    {
                        let kind = graph.nodes[index].kind.store_dir();
                        session.printer.warn(&format!(
                            "{}: discarding the cache entry {}: {}",
                            graph.nodes[index].id(),
                            session.store.entry_dir(kind, key).display(),
                            reason.trim_start_matches("cache entry damaged: ")
                        ));
                        session.store.discard(kind, key)?;
                    }
                    if let Status::Fresh { entry, .. } = &status {
                        if entry.rehashed {
                            let _ = session.store.restamp(entry);
                        }
                    }
                    let run =
                        closure.contains(&index) && matches!(status, Status::Stale { key: Some(_), .. });
                    if let Status::Stale {
                        key: None, reason, ..
                    } = &status
                    {
                        if closure.contains(&index) && graph.nodes[index].pending.is_some() {
                            bail!(
                                "{}: {reason} (internal: a run must know its tools)",
                                graph.nodes[index].id()
                            );
                        }
                    }
                    if run {
                        if let Status::Stale { reason, .. } = &status {
                            session
                                .printer
                                .detail(&format!("{}: {reason}", graph.nodes[index].id()));
                        }
                        runnable.push(index);
                    }
                    statuses[index] = Some(status);
                }
                if runnable.is_empty() {
                    if !progressed {
                        return Ok(());
                    }
                    continue;
                }
                let results = run_batch(session, graph, &runnable, statuses, manifest)?;
                for (index, result) in results {
                    let status = match result {
                        Ok((key, entry)) => {
                            built.push(index);
                            Status::Fresh { key, entry }
                        }
                        Err(err) => {
                            usage_failure |= is_usage(&err);
                            Status::Failed(crate::error::format_chain(&err))
                        }
                    };
                    statuses[index] = Some(status);
                }
            }
        };

    phase(&products, &mut statuses, None)?;
    let (manifest, missing) = dist::manifest(session.config, graph, &statuses)?;
    let changes = dist::materialise(session.config, graph, &statuses, &manifest, missing.is_empty())?;
    phase(&verdicts, &mut statuses, Some(&manifest))?;

    if !built.is_empty() {
        let mut records = records.into_inner();
        for &index in &built {
            records
                .0
                .insert(graph.nodes[index].id(), full_inputs(graph, index, &statuses));
        }
        let ids: BTreeSet<String> = graph.nodes.iter().map(|node| node.id()).collect();
        records.0.retain(|id, _| ids.contains(id));
        records.save(&session.config.cache_dir())?;
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
