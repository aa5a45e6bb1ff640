//! The executor of dependency layers (`Kind::Profile`), the slow part: each
//! platform's builder once, then each layer taken from the remote cache
//! when another machine built it under the same key, else built here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use xshell::Shell;

use super::context::{Batch, Executor, Made};
use crate::config::{Config, Platform};
use crate::graph::Node;
use crate::graph::{Session, Work};
use crate::python::installer::Source;
use crate::steps::builder::{BuildContext, Builder};
use crate::steps::builder::{Finish, LayerJob};
use crate::steps::fetched;
use crate::steps::finished::FinishedCache;
use crate::steps::install;
use crate::store::remote_cache::{RemoteCache, Wanted};
use crate::store::tools::Planned;
use crate::store::Entry;

pub(super) struct Profiles<'b> {
    /// Each platform's builder and configuration, and how many of the
    /// batch's layers are built for it.
    platforms: BTreeMap<Platform, (&'b Builder, Config, usize)>,
    /// The run's shell, copied for each layer (a shell is not `Sync`).
    sh: Mutex<Shell>,
    /// Finished distributions shared by every repository of the user.
    cache: Option<FinishedCache>,
    /// The most that cache may hold.
    bound: u64,
    /// Whether this batch builds a layer (rather than taking every one from
    /// a cache), and whether it is over: what installing ahead waits for.
    building: AtomicBool,
    over: AtomicBool,
}

impl<'b> Profiles<'b> {
    /// Each platform's builder, said once with the planning's notes.
    pub(super) fn prepare(session: &Session, batch: &Batch<'b>, nodes: &[usize]) -> Result<Profiles<'b>> {
        let progress = batch.printer.progress();
        for note in &batch.graph.notes {
            progress.note(note);
        }
        let mut platforms: BTreeMap<Platform, (&Builder, Config, usize)> = BTreeMap::new();
        for &index in nodes {
            let Work::Profile { platform, .. } = &batch.node(index).work else {
                bail!("not a dependency layer");
            };
            if let Some(entry) = platforms.get_mut(platform) {
                entry.2 += 1;
                continue;
            }
            let Some(Planned::Ready(builder)) = batch.graph.builders.get(platform) else {
                bail!(
                    "dependency layers to build for {}, but no builder was chosen",
                    platform.label()
                );
            };
            platforms.insert(*platform, (builder, batch.config.at(*platform), 1));
        }
        if let Some(which) = batch
            .remote
            .filter(|_| !batch.force)
            .and_then(RemoteCache::announce)
        {
            progress.note(&format!("remote cache: {which}"));
        }
        for (platform, (builder, _, count)) in &platforms {
            progress.note(&format!(
                "building {count} dependency layer(s) for {} {} with the {} builder ({})",
                platform.runtime.name,
                platform.arch.name(),
                builder.name(),
                builder.installer_id()
            ));
        }
        Ok(Profiles {
            platforms,
            sh: Mutex::new(session.sh.clone()),
            cache: FinishedCache::open(progress)?,
            bound: crate::config::user_cache_bound()?,
            building: AtomicBool::new(false),
            over: AtomicBool::new(false),
        })
    }

    /// Every layer of the batch is made: nothing more is installed ahead.
    pub(super) fn over(&self) {
        self.over.store(true, Ordering::Release);
    }

    /// After the batch: the cache pruned to its bound if it grew.
    pub(super) fn settle(&self, batch: &Batch) {
        if let Some(cache) = &self.cache {
            cache.settle(self.bound, batch.printer.progress());
        }
    }
}

impl Profiles<'_> {
    /// Installs, while `nodes` are built, each locked profile that this
    /// run builds next and that is stacked on them only: its install needs
    /// nothing of theirs. Best effort: its node installs again what was
    /// not made here.
    pub(super) fn install_ahead(&self, batch: &Batch, nodes: &[usize]) {
        // Layers taken from a cache are there at once, and the stacked one
        // most likely is too: it is installed only once a base is built.
        while !self.building.load(Ordering::Acquire) {
            if self.over.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for (index, node) in batch.graph.nodes.iter().enumerate() {
            let stacked_here = node.kind == crate::graph::Kind::Profile
                && batch.statuses[index].is_none()
                && batch.wanted.contains(&index)
                && !node.deps.is_empty()
                && node.deps.iter().all(|dep| nodes.contains(dep));
            let Work::Profile {
                requirements,
                lock: Some(lock),
                platform,
                finish: Some(finish),
            } = &node.work
            else {
                continue;
            };
            let Some((builder, config, _)) = self.platforms.get(platform).filter(|_| stacked_here) else {
                continue;
            };
            let sh = self.sh.lock().expect("not poisoned").clone();
            let Ok(source) = install::source(config, &node.name, requirements, Some(lock)) else {
                continue;
            };
            let job = bare_job(
                BuildContext {
                    sh: &sh,
                    config,
                    builder,
                },
                node,
                source,
                *finish,
            );
            let _ = install::install_ahead(&job);
        }
    }
}

impl Executor for Profiles<'_> {
    fn make(&self, batch: &Batch, node: &Node, key: &str) -> Result<Made> {
        let Work::Profile {
            requirements,
            lock,
            platform,
            finish: Some(finish),
        } = &node.work
        else {
            bail!("not a dependency layer with a known builder");
        };
        let (builder, config, _) = &self.platforms[platform];
        let sh = self.sh.lock().expect("not poisoned").clone();
        let source = install::source(config, &node.name, requirements, lock.as_deref())?;
        let bases = node
            .deps
            .iter()
            .map(|&dep| batch.entry(dep).context("a base profile is built first"))
            .collect::<Result<Vec<&Entry>>>()?;
        let job = LayerJob {
            provided: install::provided_by(&bases)?,
            bases: bases.iter().map(|entry| install::layer_zip(entry)).collect(),
            cache: self.cache.as_ref(),
            ..bare_job(
                BuildContext {
                    sh: &sh,
                    config,
                    builder,
                },
                node,
                source,
                *finish,
            )
        };
        let kind = node.kind.store_dir();
        let shared = self.cache.as_ref().filter(|_| !batch.force);
        if let Some(entry) =
            shared.and_then(|cache| cache.take_layer(batch.store, kind, key, batch.printer.progress()))
        {
            return Ok(Made::Shared(entry));
        }
        if let Some(entry) = fetch(batch, node, key, &job) {
            return Ok(Made::Fetched(entry));
        }
        self.building.store(true, Ordering::Release);
        let entry = batch.store.put(kind, key, |dir| {
            let data = install::build_layer(&job, dir, batch.printer.progress())?;
            Ok(serde_json::to_value(data)?)
        })?;
        if let Some(cache) = &self.cache {
            cache.keep_layer(key, &entry);
        }
        if let Some(remote) = batch.remote {
            remote.upload(kind, key, &entry, batch.printer);
        }
        Ok(Made::Built(entry))
    }
}

/// The job of `node`, as its install sees it: nothing of its bases, no cache.
fn bare_job<'a>(build: BuildContext<'a>, node: &'a Node, source: Source, finish: Finish) -> LayerJob<'a> {
    LayerJob {
        build,
        finish,
        name: &node.name,
        source,
        keyed: &node.inputs,
        provided: Vec::new(),
        bases: Vec::new(),
        cache: None,
    }
}

/// What another machine built under the same key, unless --force: taken
/// only for what its bytes show, and proven as a build is.
fn fetch(batch: &Batch, node: &Node, key: &str, job: &LayerJob) -> Option<Entry> {
    let remote = batch.remote.filter(|_| !batch.force)?;
    let verify = |files: &Path, claimed: &serde_json::Value| {
        fetched::verify_layer(job, files, claimed, &files.with_file_name("verify"))
    };
    let id = node.id();
    let wanted = Wanted {
        kind: node.kind.store_dir(),
        key,
        id: &id,
    };
    remote.fetch(batch.store, wanted, batch.printer, &fetched::FILES, &verify)
}
