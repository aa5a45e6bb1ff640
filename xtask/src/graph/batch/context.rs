//! What the executors of one batch share: the [`Batch`] (the parts of the
//! session parallel steps may use, the graph and where its nodes stand),
//! the [`Executor`] each node kind has, and what making a node gives.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use rayon::ThreadPool;

use crate::config::manifest::{BuiltView, Manifest};
use crate::config::Config;
use crate::graph::{Graph, Node, Session, Status};
use crate::ground::progress::Printer;
use crate::store::remote_cache::RemoteCache;
use crate::store::tools::Planned;
use crate::store::{Entry, Store};

/// A node's index and what running it gave: its key and entry, or why not.
pub type Built = (usize, Result<(String, Entry)>);

/// The executor of one node kind, once what its nodes share is had.
pub(super) trait Executor: Sync {
    /// Makes `node` (of the executor's kind) into the store under `key`.
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made>;

    /// The threads its nodes run on, when it has its own (`None`: as
    /// many as `--jobs`, its kind's own).
    fn pool(&self) -> Option<&ThreadPool> {
        None
    }
}

/// What making a node gave: an entry built here, or one another machine
/// built, fetched from the remote cache.
pub(super) enum Made {
    Built(Entry),
    Fetched(Entry),
    /// Built by another repository of this user, under the same key.
    Shared(Entry),
}

/// What the executors of one batch share: the parts of the session that
/// parallel steps may share (its shell is not `Sync`: what needs it is
/// done once, before the nodes run), the graph and where its nodes stand.
pub(super) struct Batch<'b> {
    pub(super) config: &'b Config,
    pub(super) store: &'b Store,
    pub(super) printer: &'b Printer,
    /// The remote cache of dependency layers, when one is configured.
    pub(super) remote: Option<&'b RemoteCache>,
    pub(super) force: bool,
    pub(super) graph: &'b Graph,
    pub(super) statuses: &'b [Option<Status>],
    /// The nodes this run may build (its targets and what they need).
    pub(super) wanted: &'b std::collections::BTreeSet<usize>,
    /// What is built, and which layer provides each module, worked out
    /// once for the checks and smoke tests (`None` before the products).
    pub(super) built: Option<BuiltView<'b>>,
    /// How many steps run at once (`--jobs`, by default one per core).
    pub(super) jobs: usize,
    /// When each node ran, for `-v`.
    pub(super) timeline: &'b crate::graph::timeline::Timeline,
}

impl<'b> Batch<'b> {
    pub(super) fn new(
        session: &'b Session,
        graph: &'b Graph,
        statuses: &'b [Option<Status>],
        wanted: &'b std::collections::BTreeSet<usize>,
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
            wanted,
            built: manifest.map(|manifest| BuiltView::new(manifest, session.config)),
            jobs,
            timeline: &session.timeline,
        })
    }

    pub(super) fn node(&self, index: usize) -> &'b Node {
        &self.graph.nodes[index]
    }

    /// The key of a node that runs.
    pub(super) fn key(&self, index: usize) -> String {
        self.statuses[index]
            .as_ref()
            .and_then(Status::key)
            .expect("a runnable node has a key")
            .to_string()
    }

    /// The entry of a node that is up to date (a dependency).
    pub(super) fn entry(&self, index: usize) -> Option<&'b Entry> {
        self.statuses[index].as_ref()?.entry()
    }

    /// The interpreter that parses the sources, or `missing` as the error.
    pub(super) fn parser(&self, missing: &str) -> Result<&'b Path> {
        match &self.graph.parser {
            Planned::Ready(parser) => Ok(parser),
            Planned::Pending(_) => Err(anyhow!("{missing}")),
        }
    }

    /// What is built, for the checks and smoke tests, which run after it.
    pub(super) fn built(&self, what: &str) -> Result<&BuiltView<'b>> {
        self.built
            .as_ref()
            .with_context(|| format!("{what} run after the products"))
    }

    /// Makes `nodes` with `executor`, as many at once as its threads allow.
    pub(super) fn each(&self, nodes: &[usize], executor: &impl Executor) -> Result<Vec<Built>> {
        let make = || {
            nodes
                .par_iter()
                .map(|&index| self.timed(index, executor))
                .collect()
        };
        Ok(match executor.pool() {
            Some(pool) => pool.install(make),
            None => rayon::ThreadPoolBuilder::new()
                .num_threads(self.jobs)
                .build()?
                .install(make),
        })
    }

    /// Makes one node, saying what was done ("building layer `core`",
    /// "checking function `auth`") and, for a product, how long it took.
    pub(super) fn timed(&self, index: usize, executor: &impl Executor) -> Built {
        let (node, key) = (self.node(index), self.key(index));
        let started = Instant::now();
        let subject = if node.kind.is_product() {
            node.kind.noun()
        } else {
            "function"
        };
        self.timeline.started(index);
        let made = executor
            .make(self, node, &key)
            .with_context(|| format!("{} {subject} `{}`", node.kind.verb(), node.name));
        self.timeline.ended(index, matches!(made, Ok(Made::Fetched(_))));
        let outcome = match &made {
            Ok(Made::Fetched(_)) => format!("fetched from the remote cache in {:.1?}", started.elapsed()),
            Ok(Made::Built(_)) => format!("built in {:.1?}", started.elapsed()),
            Ok(Made::Shared(_)) => format!(
                "taken from the cache every repository shares in {:.1?}",
                started.elapsed()
            ),
            Err(_) => "failed".to_string(),
        };
        if node.kind.is_product() {
            self.printer.progress().done(&node.id(), &outcome);
        }
        let entry = made.map(|made| match made {
            Made::Built(entry) | Made::Fetched(entry) | Made::Shared(entry) => entry,
        });
        (index, entry.map(|entry| (key, entry)))
    }
}
