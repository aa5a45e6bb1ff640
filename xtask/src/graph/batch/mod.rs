//! One batch of a run: stale nodes whose dependencies are all up to date,
//! each handed to the executor of its kind. An executor first has, once
//! for the nodes of its kind, what they share (the builder, one parse of
//! the changed handlers, the smoke runner), then makes each node, as many
//! at once as `--jobs` allows. What a node's product contains is its
//! step's business; an executor decides only when and whether it runs.

mod check;
mod function;
mod profile;
mod smoke;
mod source_layer;

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use rayon::ThreadPool;

use self::check::Checks;
use self::function::Functions;
use self::profile::Profiles;
use self::smoke::Smokes;
use self::source_layer::SourceLayers;
use super::{Graph, Kind, Node, Session, Status};
use crate::config::manifest::{BuiltView, Manifest};
use crate::config::Config;
use crate::progress::Printer;
use crate::store::remote_cache::RemoteCache;
use crate::store::tools::Planned;
use crate::store::{Entry, Store};

/// A node's index and what running it gave: its key and entry, or why not.
pub type Built = (usize, Result<(String, Entry)>);

/// The kinds in the order a batch runs them.
const ORDER: [Kind; 5] = [
    Kind::Profile,
    Kind::SourceLayer,
    Kind::Function,
    Kind::Check,
    Kind::Smoke,
];

/// Runs stale nodes whose dependencies are all up to date, kind by kind.
pub fn run_batch(
    session: &Session,
    graph: &Graph,
    runnable: &[usize],
    statuses: &[Option<Status>],
    manifest: Option<&Manifest>,
) -> Result<Vec<Built>> {
    let batch = Batch::new(session, graph, statuses, manifest)?;
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
            Kind::Profile => batch.each(&nodes, &Profiles::prepare(session, &batch, &nodes)?),
            Kind::SourceLayer => batch.each(&nodes, &SourceLayers::prepare(&batch, &nodes)?),
            Kind::Function => batch.each(&nodes, &Functions::prepare(&batch, &nodes)?),
            Kind::Check => batch.each(&nodes, &Checks::prepare(&batch)?),
            Kind::Smoke => batch.each(&nodes, &Smokes::prepare(session, &batch, &nodes)?),
        };
        results.extend(made);
    }
    Ok(results)
}

/// The executor of one node kind, once what its nodes share is had.
trait Executor: Sync {
    /// Makes `node` (of the executor's kind) into the store under `key`.
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made>;

    /// The threads its nodes run on: the batch's, one per job.
    fn pool<'a>(&'a self, batch: &'a Batch) -> &'a ThreadPool {
        &batch.pool
    }
}

/// What making a node gave: an entry built here, or one another machine
/// built, fetched from the remote cache.
enum Made {
    Built(Entry),
    Fetched(Entry),
}

/// What the executors of one batch share: the parts of the session that
/// parallel steps may share (its shell is not `Sync`: what needs it is
/// done once, before the nodes run), the graph and where its nodes stand.
struct Batch<'b> {
    config: &'b Config,
    store: &'b Store,
    printer: &'b Printer,
    /// The remote cache of dependency layers, when one is configured.
    remote: Option<&'b RemoteCache>,
    force: bool,
    graph: &'b Graph,
    statuses: &'b [Option<Status>],
    /// What is built, and which layer provides each module, worked out
    /// once for the checks and smoke tests (`None` before the products).
    built: Option<BuiltView<'b>>,
    /// How many steps run at once (`--jobs`, by default one per core).
    jobs: usize,
    pool: ThreadPool,
}

impl<'b> Batch<'b> {
    fn new(
        session: &'b Session,
        graph: &'b Graph,
        statuses: &'b [Option<Status>],
        manifest: Option<&'b Manifest>,
    ) -> Result<Batch<'b>> {
        let jobs = session
            .settings
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Ok(Batch {
            config: session.config,
            store: &session.store,
            printer: session.printer,
            remote: session.remote.as_ref(),
            force: session.settings.force,
            graph,
            statuses,
            built: manifest.map(|manifest| BuiltView::new(manifest, session.config)),
            jobs,
            pool: rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?,
        })
    }

    fn node(&self, index: usize) -> &'b Node {
        &self.graph.nodes[index]
    }

    /// The key of a node that runs.
    fn key(&self, index: usize) -> String {
        self.statuses[index]
            .as_ref()
            .and_then(Status::key)
            .expect("a runnable node has a key")
            .to_string()
    }

    /// The entry of a node that is up to date (a dependency).
    fn entry(&self, index: usize) -> Option<&'b Entry> {
        self.statuses[index].as_ref()?.entry()
    }

    /// The interpreter that parses the sources, or `missing` as the error.
    fn parser(&self, missing: &str) -> Result<&'b Path> {
        match &self.graph.parser {
            Planned::Ready(parser) => Ok(parser),
            Planned::Pending(_) => Err(anyhow!("{missing}")),
        }
    }

    /// What is built, for the checks and smoke tests, which run after it.
    fn built(&self, what: &str) -> Result<&BuiltView<'b>> {
        self.built
            .as_ref()
            .with_context(|| format!("{what} run after the products"))
    }

    /// Makes `nodes` with `executor`, as many at once as its pool has threads.
    fn each(&self, nodes: &[usize], executor: &impl Executor) -> Vec<Built> {
        executor.pool(self).install(|| {
            nodes
                .par_iter()
                .map(|&index| self.timed(index, executor))
                .collect()
        })
    }

    /// Makes one node, saying what was done ("building layer `core`",
    /// "checking function `auth`") and, for a product, how long it took.
    fn timed(&self, index: usize, executor: &impl Executor) -> Built {
        let (node, key) = (self.node(index), self.key(index));
        let started = Instant::now();
        let subject = if node.kind.is_product() {
            node.kind.noun()
        } else {
            "function"
        };
        let made = executor
            .make(self, node, &key)
            .with_context(|| format!("{} {subject} `{}`", node.kind.verb(), node.name));
        let outcome = match &made {
            Ok(Made::Fetched(_)) => format!("fetched from the remote cache in {:.1?}", started.elapsed()),
            Ok(Made::Built(_)) => format!("built in {:.1?}", started.elapsed()),
            Err(_) => "failed".to_string(),
        };
        if node.kind.is_product() {
            self.printer.progress().done(&node.id(), &outcome);
        }
        let entry = made.map(|made| match made {
            Made::Built(entry) | Made::Fetched(entry) => entry,
        });
        (index, entry.map(|entry| (key, entry)))
    }
}
