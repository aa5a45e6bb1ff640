//! The build graph: every product and every check of the repository as a
//! node whose key covers everything that determines its output, computed
//! as a pure function of the configuration, the input files' contents and
//! the tools' identities. Planning starts no process and writes nothing:
//! it is what `--dry-run` prints and what a run executes, the same value.
//!
//! Nodes: a dependency layer (install + zip), a source layer, a function
//! ZIP, and the check and smoke of each function. A node's key is the hash
//! of its own labelled inputs and of the outputs of the nodes it depends
//! on, so a rebuild that gives the same bytes leaves its dependants fresh.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use xshell::Shell;

use crate::config::{Config, Overrides, Platform};
use crate::facts::Arch;
use crate::ground::progress::Printer;
use crate::lambda::runtime_env::Runner;
use crate::python::installer::InstallerChoice;
use crate::python::sources::SourceFile;
use crate::steps::builder::Builder;
use crate::steps::image::{BaseData, ImageData, BASE_MANIFEST, IMAGE_MANIFEST};
use crate::steps::install::{ZipData, LAYER_ZIP};
use crate::steps::package::FUNCTION_ZIP;
use crate::store::inputs::{Inputs, LazyRecords};
use crate::store::registry::Reference;
use crate::store::remote_cache::RemoteCache;
use crate::store::tools::{Planned, Tools};
use crate::store::{Entry, Lookup, Store};

mod batch;
pub mod dist;
pub mod plan;
pub mod run;
pub mod timeline;

/// Bumped whenever a step's output for the same inputs changes, so that
/// entries of an older tool are never reused.
const FORMAT: &[(Kind, &str)] = &[
    (Kind::Profile, "7"),
    (Kind::SourceLayer, "2"),
    (Kind::Function, "2"),
    (Kind::Base, "1"),
    (Kind::Image, "1"),
    (Kind::Sbom, "2"),
    (Kind::Check, "3"),
    (Kind::Smoke, "2"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Profile,
    SourceLayer,
    Function,
    /// A base image for one architecture, pulled by digest.
    Base,
    /// An image function's image on its base.
    Image,
    /// A function's software bill of materials.
    Sbom,
    Check,
    Smoke,
}

impl Kind {
    /// Its folder in the store.
    pub fn store_dir(self) -> &'static str {
        match self {
            Kind::Profile => "profile",
            Kind::SourceLayer => "source-layer",
            Kind::Function => "function",
            Kind::Base => "base",
            Kind::Image => "image",
            Kind::Sbom => "sbom",
            Kind::Check => "check",
            Kind::Smoke => "smoke",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Kind::Profile | Kind::SourceLayer => "layer",
            Kind::Function => "function",
            Kind::Base => "base image",
            Kind::Image => "image",
            Kind::Sbom => "sbom",
            Kind::Check => "check",
            Kind::Smoke => "smoke",
        }
    }

    /// What its step does, for messages: "building layer `core`".
    pub fn verb(self) -> &'static str {
        match self {
            Kind::Profile | Kind::SourceLayer | Kind::Function | Kind::Image => "building",
            Kind::Base => "pulling",
            Kind::Sbom => "writing",
            Kind::Check => "checking",
            Kind::Smoke => "smoke-testing",
        }
    }

    /// Products land in `dist/`; checks are verdicts about them.
    pub fn is_product(self) -> bool {
        matches!(
            self,
            Kind::Profile | Kind::SourceLayer | Kind::Function | Kind::Base | Kind::Image | Kind::Sbom
        )
    }

    /// The file a product's store entry holds: its ZIP, or an image's or
    /// a base's manifest.
    pub fn product_file(self) -> &'static str {
        match self {
            Kind::Function => FUNCTION_ZIP,
            Kind::Base => BASE_MANIFEST,
            Kind::Image => IMAGE_MANIFEST,
            Kind::Sbom => crate::steps::sbom::CYCLONEDX,
            _ => LAYER_ZIP,
        }
    }

    fn format(self) -> &'static str {
        FORMAT
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("0", |(_, v)| v)
    }
}

/// What a node's step needs beyond the configuration.
#[derive(Debug, Clone)]
pub enum Work {
    /// A dependency layer: its requirements and, when the profile is locked,
    /// the lock it installs instead (nothing resolved again).
    Profile {
        /// The platform it is built for (the node's name says it too,
        /// unless it is the repository's).
        platform: Platform,
        requirements: PathBuf,
        lock: Option<PathBuf>,
        /// What is done after the install; `None` while the builder is
        /// not known (a plan that may not probe).
        finish: Option<crate::steps::builder::Finish>,
    },
    SourceLayer {
        files: Vec<SourceFile>,
        prefix: String,
    },
    Function {
        files: Vec<SourceFile>,
        /// Whether the parser compiles its bytecode (it runs on the
        /// repository's runtime, whose Python parses).
        compiles: bool,
    },
    /// A base image, by digest, for one architecture.
    Base {
        reference: Reference,
        arch: Arch,
        /// Why it cannot be pulled: a tag `images.lock` does not pin.
        unpinned: Option<String>,
    },
    /// An image function's image: its deps are its base, its function's
    /// ZIP and its layers in the order the ZIP would attach them.
    Image,
    /// A function's SBOM (its deps are its function's ZIP and its built
    /// layers in order), or a dependency layer's (`layer`: its name, the
    /// one dep); the locks of its locked profiles, by layer and path.
    Sbom {
        layer: Option<String>,
        locks: Vec<(String, PathBuf)>,
    },
    Check,
    Smoke,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// The layer's or the function's name.
    pub name: String,
    pub deps: Vec<usize>,
    /// Its own inputs; the deps' outputs are added when its key is made.
    pub inputs: Inputs,
    /// A tool whose identity is not known yet: what a run would do first.
    pub pending: Option<String>,
    pub work: Work,
}

impl Node {
    /// `function auth`, `layer core`, `check auth`: how people name it.
    pub fn id(&self) -> String {
        format!("{} {}", self.kind.noun(), self.name)
    }
}

/// Where a node stands.
#[derive(Debug, Clone)]
pub enum Status {
    /// Its entry is in the store, verified.
    Fresh { key: String, entry: Entry },
    /// It must run. `key` is `None` while a dependency is stale (its key is
    /// made from their outputs); `damaged` when an entry for it was there
    /// but did not match what it recorded.
    Stale {
        key: Option<String>,
        reason: String,
        damaged: bool,
    },
    /// It ran and failed.
    Failed(String),
    /// A node it depends on failed.
    Blocked(String),
}

impl Status {
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Status::Fresh { entry, .. } => Some(entry),
            _ => None,
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Status::Fresh { key, .. } => Some(key),
            Status::Stale { key, .. } => key.as_deref(),
            _ => None,
        }
    }
}

/// What a run is asked beyond the configuration; the command that runs
/// the graph sets it.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Rebuild the targets and what they need, ignoring the store.
    pub force: bool,
    /// Steps at once (default: the number of CPUs; at most 4 smoke tests).
    pub jobs: Option<usize>,
    pub installer: InstallerChoice,
    /// What the command line overrode, for messages that name a command.
    pub overrides: Overrides,
    /// Only planned: no tool is written down, no remote cache opened.
    pub dry_run: bool,
}

/// One run's shared state: one configuration, one shell, one printer.
pub struct Session<'a> {
    pub config: &'a Config,
    pub settings: Settings,
    pub printer: &'a Printer,
    pub sh: Shell,
    pub tools: Tools,
    pub store: Store,
    /// The remote cache of dependency layers, when one is configured.
    pub remote: Option<RemoteCache>,
    /// When each node that ran was ready, started and ended (`-v`).
    pub timeline: timeline::Timeline,
}

impl<'a> Session<'a> {
    pub fn new(config: &'a Config, settings: Settings, printer: &'a Printer) -> Result<Session<'a>> {
        let sh = Shell::new()?;
        sh.change_dir(&config.root);
        Ok(Session {
            config,
            printer,
            sh,
            tools: Tools::load(&config.cache_dir(), !settings.dry_run),
            store: Store::new(&config.cache_dir()),
            remote: match &config.remote_cache {
                Some(remote) if !settings.dry_run => RemoteCache::open(remote, printer)?,
                _ => None,
            },
            settings,
            timeline: timeline::Timeline::default(),
        })
    }
}

pub struct Graph {
    pub nodes: Vec<Node>,
    by_id: BTreeMap<(Kind, String), usize>,
    /// How the dependency layers are built, for each platform they are
    /// built for (settled once).
    pub builders: BTreeMap<Platform, Planned<Builder>>,
    /// Where the functions of each platform run.
    pub runners: BTreeMap<Platform, Planned<Runner>>,
    /// The interpreter whose parser reads the sources.
    pub parser: Planned<PathBuf>,
    /// The parser's implementation and full version (`CPython 3.11.7 (…)`),
    /// part of its identity in keys.
    pub parser_version: String,
    /// Whether the parser, the runtime's own Python, compiles application
    /// code (functions and source layers) to checked-hash bytecode.
    pub compiles_app_code: bool,
    /// One line each about choices made while planning (the builder).
    pub notes: Vec<String>,
}

impl Graph {
    pub fn find(&self, kind: Kind, name: &str) -> Option<usize> {
        self.by_id.get(&(kind, name.to_string())).copied()
    }

    /// The layer node of `name`, whichever kind it is.
    pub fn layer(&self, name: &str) -> Option<usize> {
        self.find(Kind::Profile, name)
            .or_else(|| self.find(Kind::SourceLayer, name))
    }

    /// `targets` and everything they depend on.
    pub fn closure(&self, targets: &[usize]) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = targets.to_vec();
        while let Some(index) = stack.pop() {
            if seen.insert(index) {
                stack.extend(&self.nodes[index].deps);
            }
        }
        seen
    }

    pub fn of_kind(&self, kinds: &[Kind]) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&index| kinds.contains(&self.nodes[index].kind))
            .collect()
    }

    fn push(&mut self, node: Node) -> usize {
        let index = self.nodes.len();
        self.by_id.insert((node.kind, node.name.clone()), index);
        self.nodes.push(node);
        index
    }
}

/// Where node `index` stands, once its dependencies' statuses are known.
/// Reads the store; writes nothing.
pub fn evaluate(
    graph: &Graph,
    index: usize,
    statuses: &[Option<Status>],
    store: &Store,
    force: bool,
    records: &LazyRecords,
) -> Status {
    let node = &graph.nodes[index];
    for &dep in &node.deps {
        match statuses[dep].as_ref() {
            Some(Status::Fresh { .. }) => {}
            Some(Status::Failed(_)) | Some(Status::Blocked(_)) => {
                return Status::Blocked(format!("{} failed", graph.nodes[dep].id()));
            }
            _ => {
                return Status::Stale {
                    key: None,
                    reason: format!("after {}", graph.nodes[dep].id()),
                    damaged: false,
                }
            }
        }
    }
    if let Some(what) = &node.pending {
        let reason = if records.get().0.contains_key(&node.id()) {
            what.clone()
        } else {
            format!("not built yet ({what})")
        };
        return Status::Stale {
            key: None,
            reason,
            damaged: false,
        };
    }
    let full = full_inputs(graph, index, statuses);
    let key = full.key();
    if force {
        return Status::Stale {
            key: Some(key),
            reason: "--force".to_string(),
            damaged: false,
        };
    }
    match store.lookup(node.kind.store_dir(), &key) {
        Lookup::Hit(entry) => match unusable(node.kind, &entry) {
            None => Status::Fresh { key, entry },
            Some(why) => Status::Stale {
                key: Some(key),
                reason: format!("cache entry damaged: {why}"),
                damaged: true,
            },
        },
        Lookup::Damaged(why) => Status::Stale {
            key: Some(key),
            reason: format!("cache entry damaged: {why}"),
            damaged: true,
        },
        Lookup::Miss => {
            let reason = match records.get().0.get(&node.id()) {
                Some(before) => full.difference(before),
                None => "not built yet".to_string(),
            };
            Status::Stale {
                key: Some(key),
                reason,
                damaged: false,
            }
        }
    }
}

/// Why a product's store entry cannot be used (its ZIP is not among its
/// files, or its data is not a ZIP product's), if it cannot: such an entry
/// is rebuilt, never read again and again by every later run.
fn unusable(kind: Kind, entry: &Entry) -> Option<String> {
    if !kind.is_product() {
        return None;
    }
    if entry.file(kind.product_file()).is_none() {
        return Some(format!("it has no {}", kind.product_file()));
    }
    let wrong = match kind {
        Kind::Base => serde_json::from_value::<BaseData>(entry.data.clone()).err(),
        Kind::Image => serde_json::from_value::<ImageData>(entry.data.clone()).err(),
        Kind::Sbom => serde_json::from_value::<crate::steps::sbom::SbomData>(entry.data.clone()).err(),
        _ => serde_json::from_value::<ZipData>(entry.data.clone()).err(),
    };
    wrong.map(|err| format!("its data is not a {} product's ({err})", kind.noun()))
}

/// A node's own inputs and the outputs of its dependencies.
pub fn full_inputs(graph: &Graph, index: usize, statuses: &[Option<Status>]) -> Inputs {
    let node = &graph.nodes[index];
    let mut full = node.inputs.clone();
    for &dep in &node.deps {
        if let Some(entry) = statuses[dep].as_ref().and_then(Status::entry) {
            full.add(graph.nodes[dep].id(), entry.digest().to_string());
        }
    }
    full
}
