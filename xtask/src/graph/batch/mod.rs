//! One batch of a run: stale nodes whose dependencies are all up to date,
//! each handed to the executor of its kind. An executor first has, once
//! for the nodes of its kind, what they share (the builder, one parse of
//! the changed handlers, the smoke runner), then makes each node, as many
//! at once as `--jobs` allows. What a node's product contains is its
//! step's business; an executor decides only when and whether it runs.

mod check;
mod context;
mod function;
mod image;
mod profile;
mod sbom;
mod smoke;
mod source_layer;

use std::collections::BTreeSet;

use anyhow::Result;

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

/// Runs stale nodes whose dependencies are all up to date, kind by kind.
pub fn run_batch(
    session: &Session,
    graph: &Graph,
    runnable: &[usize],
    statuses: &[Option<Status>],
    wanted: &BTreeSet<usize>,
    manifest: Option<&Manifest>,
) -> Result<Vec<Built>> {
    let batch = Batch::new(session, graph, statuses, wanted, manifest)?;
    let mut results = Vec::new();
    for kind in ORDER {
        let nodes: Vec<usize> = runnable
            .iter()
            .copied()
            .filter(|&index| graph.nodes[index].kind == kind)
            .collect();
        if nodes.is_empty() {
            continue;
        }
        let made = match kind {
            Kind::Profile => {
                let profiles = Profiles::prepare(session, &batch, &nodes)?;
                let made = std::thread::scope(|scope| {
                    scope.spawn(|| profiles.install_ahead(&batch, &nodes));
                    let made = batch.each(&nodes, &profiles);
                    profiles.over();
                    made
                });
                profiles.settle(&batch);
                made
            }
            Kind::SourceLayer => batch.each(&nodes, &SourceLayers::prepare(&batch, &nodes)?),
            Kind::Function => batch.each(&nodes, &Functions::prepare(&batch, &nodes)?),
            Kind::Base => batch.each(&nodes, &Bases),
            Kind::Image => batch.each(&nodes, &Images),
            Kind::Sbom => batch.each(&nodes, &Sboms),
            Kind::Check => batch.each(&nodes, &Checks::prepare(&batch)?),
            Kind::Smoke => batch.each(&nodes, &Smokes::prepare(session, &batch, &nodes)?),
        };
        results.extend(made);
    }
    Ok(results)
}
