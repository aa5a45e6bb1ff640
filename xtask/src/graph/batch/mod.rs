//! One batch of a run: stale nodes whose dependencies are all up to date,
//! each handed to the executor of its kind. An executor first has, once
//! for the nodes of its kind, what they share (the builder, one parse of
//! the changed handlers, the smoke runner), then makes each node, as many
//! at once as `--jobs` allows. The kinds of a batch need nothing of each
//! other (a batch holds only nodes whose dependencies are up to date), so
//! they run side by side, each on threads of its own: a handler's ZIP is
//! not queued behind a dependency layer's install, nor a smoke test behind
//! the checks. What a node's product contains is its step's business; an
//! executor decides only when and whether it runs.

mod check;
mod context;
mod function;
mod image;
mod profile;
mod sbom;
mod smoke;
mod source_layer;

use std::collections::BTreeSet;

use anyhow::{anyhow, Result};

pub use self::context::Built;

use self::check::Checks;
use self::context::Batch;
use self::function::Functions;
use self::image::{Bases, Images};
use self::profile::Profiles;
use self::sbom::Sboms;
use self::smoke::Smokes;
use self::source_layer::SourceLayers;
use super::{Graph, Kind, Session, Status};
use crate::config::manifest::Manifest;

/// The kinds in the order a batch runs them.
const ORDER: [Kind; 8] = [
    // First: a pull waits on the network, not on the cores.
    Kind::Base,
    Kind::Profile,
    Kind::SourceLayer,
    Kind::Function,
    Kind::Image,
    Kind::Sbom,
    Kind::Check,
    Kind::Smoke,
];

/// Runs stale nodes whose dependencies are all up to date, the kinds side
/// by side.
pub fn run_batch(
    session: &Session,
    graph: &Graph,
    runnable: &[usize],
    statuses: &[Option<Status>],
    wanted: &BTreeSet<usize>,
    manifest: Option<&Manifest>,
) -> Result<Vec<Built>> {
    let batch = Batch::new(session, graph, statuses, wanted, manifest)?;
    let of_kind = |kind: Kind| -> Vec<usize> {
        runnable
            .iter()
            .copied()
            .filter(|&index| graph.nodes[index].kind == kind)
            .collect()
    };
    let kinds: Vec<(Kind, Vec<usize>)> = ORDER
        .into_iter()
        .map(|kind| (kind, of_kind(kind)))
        .filter(|(_, nodes)| !nodes.is_empty())
        .collect();
    let batch = &batch;
    std::thread::scope(|scope| {
        let mut runs = Vec::new();
        for (kind, nodes) in &kinds {
            // What needs the session (its shell is not `Sync`) is had here,
            // on this thread, before its kind runs beside the others.
            let run = match kind {
                Kind::Profile => {
                    let profiles = Profiles::prepare(session, batch, nodes)?;
                    scope.spawn(move || {
                        let made = std::thread::scope(|scope| {
                            scope.spawn(|| profiles.install_ahead(batch, nodes));
                            let made = batch.each(nodes, &profiles);
                            profiles.over();
                            made
                        });
                        profiles.settle(batch);
                        made
                    })
                }
                Kind::Smoke => {
                    let smokes = Smokes::prepare(session, batch, nodes)?;
                    scope.spawn(move || batch.each(nodes, &smokes))
                }
                Kind::SourceLayer => scope.spawn(|| batch.each(nodes, &SourceLayers::prepare(batch, nodes)?)),
                Kind::Function => scope.spawn(|| batch.each(nodes, &Functions::prepare(batch, nodes)?)),
                Kind::Base => scope.spawn(|| batch.each(nodes, &Bases)),
                Kind::Image => scope.spawn(|| batch.each(nodes, &Images)),
                Kind::Sbom => scope.spawn(|| batch.each(nodes, &Sboms)),
                Kind::Check => scope.spawn(|| batch.each(nodes, &Checks::prepare(batch)?)),
            };
            runs.push(run);
        }
        let mut results = Vec::new();
        for run in runs {
            let made = run.join().map_err(|_| anyhow!("a step of the batch panicked"))?;
            results.extend(made?);
        }
        Ok(results)
    })
}
