//! The report wing: what a run shows people. Imports every wing below the
//! commands (the graph, the steps, configuration, store, ground floor).
//!
//! - `render`: the text and JSON of commands (plans, tables, verdicts);
//! - this file, `html`, `treemap`: `dist/report.html`.
//!
//! `dist/report.html`: one self-contained page about what was built, for
//! people. For each function a treemap of its unzipped bytes (its own
//! code, each attached layer in order, their distributions and largest
//! files) under a scale with AWS's limit and the budget, the same figures
//! as a plain table, what the runtime or a base layer provides instead,
//! unused distributions, files two layers both ship, the init time; and
//! what changed since the previous, different build.
//!
//! Nothing here is measured again: sizes and totals are the check
//! reports', versions the manifest's, timings the smoke verdicts'. Only the
//! ZIPs' central directories are read, for the files inside. The page is a
//! function of those and of the previous build (kept in
//! `<cache>/report/history.json`): no clock, no absolute path, stable
//! order and fixed number formats, so the same build writes the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::config::manifest::{FunctionEntry, LayerEntry, LayerKind, Manifest};
use crate::config::Config;
use crate::facts::{self, normalize_dist_name};
use crate::steps::limits::FunctionReport;
use crate::steps::smoke::Outcome;
use crate::store::archive::{self, Listed};

mod html;
pub mod render;
mod treemap;

/// The report's path relative to the repository root, as people see it.
pub const RELATIVE_PATH: &str = "dist/report.html";

/// Bumped whenever the page for the same inputs changes, so that a page an
/// older tool wrote is written again.
const PAGE_FORMAT: &str = "1";

/// How many files of a distribution get their own rectangle and row.
const LARGEST_FILES: usize = 4;

/// Writes the report of a whole manifest (only a whole one is written to
/// `dist/`) with the verdicts known for it. Returns whether its bytes
/// changed. The previous build's snapshot is kept in the cache.
pub fn write(
    config: &Config,
    manifest: &Manifest,
    checks: &BTreeMap<String, FunctionReport>,
    smokes: &BTreeMap<String, Outcome>,
) -> Result<bool> {
    let history_path = config.cache_dir().join("report").join("history.json");
    let history = History::load(&history_path);
    let snapshot = Snapshot::new(manifest, checks);
    let mut history = history.advance(snapshot);
    let path = config.report_path();
    // A no-op run has the same inputs: the page it would write is there.
    let inputs = page_inputs(manifest, checks, smokes, history.previous.as_ref())?;
    if let Some(page) = &history.page {
        let intact = crate::digest::file_sha256(&path).is_ok_and(|digest| digest.hex == page.sha256);
        if page.inputs == inputs && intact {
            history.save(&history_path)?;
            return Ok(false);
        }
    }
    let listings = Listings::read(&config.root, manifest)?;
    let model = Model::new(
        config,
        manifest,
        checks,
        smokes,
        &listings,
        history.previous.as_ref(),
    );
    let page = html::page(&model);
    history.page = Some(Page {
        inputs,
        sha256: crate::digest::bytes_sha256(page.as_bytes()),
    });

    let changed = fs::read(&path).ok().as_deref() != Some(page.as_bytes());
    if changed {
        write_atomic(&path, page.as_bytes()).context("writing the report")?;
    }
    history.save(&history_path)?;
    Ok(changed)
}

/// What the comparison of the next report needs of a build: its manifest
/// and each function's total as its check measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Snapshot {
    manifest: Manifest,
    totals: BTreeMap<String, u64>,
}

impl Snapshot {
    fn new(manifest: &Manifest, checks: &BTreeMap<String, FunctionReport>) -> Snapshot {
        Snapshot {
            manifest: manifest.clone(),
            totals: checks
                .iter()
                .filter(|(name, _)| manifest.functions.contains_key(*name))
                .map(|(name, report)| (name.clone(), report.total_unzipped_bytes))
                .collect(),
        }
    }
}

/// The build the last report described, and the last one before it whose
/// manifest was different: what "changes" compares with.
#[derive(Debug, Default, Serialize, Deserialize)]
struct History {
    current: Option<Snapshot>,
    previous: Option<Snapshot>,
    /// The page last written.
    #[serde(default)]
    page: Option<Page>,
}

/// What the page last written was made from, and its hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Page {
    inputs: String,
    sha256: String,
}

/// Everything the page is a function of, hashed.
fn page_inputs(
    manifest: &Manifest,
    checks: &BTreeMap<String, FunctionReport>,
    smokes: &BTreeMap<String, Outcome>,
    previous: Option<&Snapshot>,
) -> Result<String> {
    let mut hasher = crate::digest::KeyHasher::default();
    hasher
        .part("format", PAGE_FORMAT)
        .part("manifest", serde_json::to_vec(manifest)?)
        .part("checks", serde_json::to_vec(checks)?)
        .part("smokes", serde_json::to_vec(smokes)?)
        .part("previous", serde_json::to_vec(&previous)?);
    Ok(hasher.hex())
}

impl History {
    /// An unreadable or older history is no history.
    fn load(path: &Path) -> History {
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The history once `snapshot` is the current build: the current one
    /// becomes the previous only when the manifest differs. Totals are a
    /// function of the manifest, so those known before are kept.
    fn advance(self, snapshot: Snapshot) -> History {
        let page = self.page;
        match self.current {
            Some(mut current) if current.manifest == snapshot.manifest => {
                current.totals.extend(snapshot.totals);
                History {
                    current: Some(current),
                    previous: self.previous,
                    page,
                }
            }
            Some(current) => History {
                current: Some(snapshot),
                previous: Some(current),
                page,
            },
            None => History {
                current: Some(snapshot),
                previous: None,
                page,
            },
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)?;
        if fs::read(path).ok().as_deref() != Some(bytes.as_slice()) {
            write_atomic(path, &bytes).context("keeping the build for the next report's comparison")?;
        }
        Ok(())
    }
}

/// The file listings of every built ZIP the manifest names, by its path.
struct Listings(BTreeMap<String, Vec<Listed>>);

impl Listings {
    fn read(root: &Path, manifest: &Manifest) -> Result<Listings> {
        let zips = manifest
            .layers
            .values()
            .filter_map(|layer| layer.zip.clone())
            .chain(
                manifest
                    .functions
                    .values()
                    .map(|function| function.zip.zip.clone()),
            );
        let mut listings = BTreeMap::new();
        for zip in zips {
            let path: PathBuf = root.join(&zip);
            let files = archive::list_zip(&path).with_context(|| format!("listing {zip} for the report"))?;
            listings.insert(zip, files);
        }
        Ok(Listings(listings))
    }

    fn of(&self, zip: Option<&str>) -> &[Listed] {
        zip.and_then(|zip| self.0.get(zip))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Everything the page shows, computed once.
pub(crate) struct Model<'a> {
    pub runtime: &'a str,
    pub architecture: &'a str,
    pub budget: Option<u64>,
    /// Palette slot of every layer, by its name in the manifest.
    pub colours: BTreeMap<String, usize>,
    pub functions: Vec<FunctionView<'a>>,
    pub changes: Changes,
}

pub(crate) struct FunctionView<'a> {
    pub name: &'a str,
    pub entry: &'a FunctionEntry,
    pub check: Option<&'a FunctionReport>,
    pub smoke: Option<&'a Outcome>,
    pub budget: Option<u64>,
    /// Its own code, then each attached layer in Lambda's order.
    pub parts: Vec<Part>,
    /// Files that two or more attached layers ship, grouped by the layers.
    pub twice: Vec<Twice>,
    /// What its layers leave out because something else provides it.
    pub provided: Vec<Provided>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartKind {
    Function,
    Dependency,
    Source,
    External,
}

pub(crate) struct Part {
    pub kind: PartKind,
    pub name: String,
    pub bytes: u64,
    pub groups: Vec<Group>,
}

/// A distribution of a dependency layer, a top-level module of application
/// code, or what no distribution claims.
pub(crate) struct Group {
    pub name: String,
    pub version: Option<String>,
    pub distribution: bool,
    pub bytes: u64,
    pub files: usize,
    pub unused: bool,
    pub twice_files: usize,
    pub twice_bytes: u64,
    pub leaves: Vec<Leaf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeafKind {
    File,
    /// Its files that another attached layer ships too.
    Twice,
    /// The rest of the group.
    Rest,
}

pub(crate) struct Leaf {
    pub kind: LeafKind,
    pub label: String,
    pub files: usize,
    pub bytes: u64,
}

pub(crate) struct Twice {
    /// The layers shipping the same paths, in order: the last one's copy
    /// is the one that runs.
    pub layers: Vec<String>,
    pub paths: Vec<String>,
    pub bytes: u64,
}

pub(crate) struct Provided {
    pub layer: String,
    /// `runtime`, `exclude`, or the base layers' names.
    pub by: ProvidedBy,
    pub distributions: Vec<String>,
}

pub(crate) enum ProvidedBy {
    Runtime,
    Exclude,
    Bases(Vec<String>),
}

impl<'a> Model<'a> {
    fn new(
        config: &'a Config,
        manifest: &'a Manifest,
        checks: &'a BTreeMap<String, FunctionReport>,
        smokes: &'a BTreeMap<String, Outcome>,
        listings: &Listings,
        previous: Option<&Snapshot>,
    ) -> Model<'a> {
        let colours = manifest
            .layers
            .keys()
            .enumerate()
            .map(|(index, name)| (name.clone(), index))
            .collect();
        let functions = manifest
            .functions
            .iter()
            .map(|(name, entry)| {
                let budget = config
                    .functions
                    .get(name)
                    .map_or(config.budget, |function| config.budget_for(function));
                function_view(
                    name,
                    entry,
                    manifest,
                    checks.get(name),
                    smokes.get(name),
                    budget,
                    listings,
                )
            })
            .collect();
        Model {
            runtime: &manifest.runtime,
            architecture: &manifest.architecture,
            budget: config.budget,
            colours,
            functions,
            changes: changes(manifest, checks, previous),
        }
    }
}

fn function_view<'a>(
    name: &'a str,
    entry: &'a FunctionEntry,
    manifest: &'a Manifest,
    check: Option<&'a FunctionReport>,
    smoke: Option<&'a Outcome>,
    budget: Option<u64>,
    listings: &Listings,
) -> FunctionView<'a> {
    let shares: Vec<(String, u64)> = match check {
        Some(report) => report
            .layers
            .iter()
            .map(|layer| (layer.name.clone(), layer.unzipped_bytes))
            .collect(),
        None => entry
            .layers
            .iter()
            .map(|layer| {
                let bytes = manifest.layers.get(layer).map_or(0, |entry| entry.unzipped_bytes);
                (layer.clone(), bytes)
            })
            .collect(),
    };
    let twice = shipped_twice(&shares, manifest, listings);
    let mut twice_paths: BTreeSet<(&str, &str)> = BTreeSet::new();
    for twice in &twice {
        for layer in &twice.layers {
            twice_paths.extend(twice.paths.iter().map(|path| (layer.as_str(), path.as_str())));
        }
    }
    let unused: BTreeSet<(String, String)> = check
        .map(|report| {
            report
                .imports
                .unused
                .iter()
                .map(|unused| (unused.layer.clone(), normalize_dist_name(&unused.distribution)))
                .collect()
        })
        .unwrap_or_default();

    let mut parts = vec![Part {
        kind: PartKind::Function,
        name: name.to_string(),
        bytes: check.map_or(entry.zip.unzipped_bytes, |report| report.function_unzipped_bytes),
        groups: code_groups(listings.of(Some(&entry.zip.zip)), "", &|_| false),
    }];
    for (layer, bytes) in &shares {
        let Some(built) = manifest.layers.get(layer) else {
            parts.push(Part {
                kind: PartKind::External,
                name: layer.clone(),
                bytes: *bytes,
                groups: Vec::new(),
            });
            continue;
        };
        let files = listings.of(built.zip.as_deref());
        let is_twice = |path: &str| twice_paths.contains(&(layer.as_str(), path));
        let (kind, groups) = match built.kind {
            LayerKind::External => (PartKind::External, Vec::new()),
            LayerKind::Source => (PartKind::Source, code_groups(files, "python/", &is_twice)),
            LayerKind::Requirements => (
                PartKind::Dependency,
                distribution_groups(layer, built, *bytes, files, &unused, &is_twice),
            ),
        };
        parts.push(Part {
            kind,
            name: layer.clone(),
            bytes: *bytes,
            groups,
        });
    }
    FunctionView {
        name,
        entry,
        check,
        smoke,
        budget,
        parts,
        twice,
        provided: provided(entry, manifest, check),
    }
}

/// The paths that more than one of the function's layers ship, grouped by
/// the layers that ship them.
fn shipped_twice(shares: &[(String, u64)], manifest: &Manifest, listings: &Listings) -> Vec<Twice> {
    let mut owners: BTreeMap<&str, (Vec<&str>, u64)> = BTreeMap::new();
    for (layer, _) in shares {
        let zip = manifest.layers.get(layer).and_then(|entry| entry.zip.as_deref());
        for file in listings.of(zip) {
            let owner = owners.entry(file.path.as_str()).or_default();
            if !owner.0.contains(&layer.as_str()) {
                owner.0.push(layer);
                owner.1 += file.size;
            }
        }
    }
    let mut by_layers: BTreeMap<Vec<&str>, Twice> = BTreeMap::new();
    for (path, (layers, bytes)) in owners {
        if layers.len() < 2 {
            continue;
        }
        let twice = by_layers.entry(layers.clone()).or_insert_with(|| Twice {
            layers: layers.iter().map(|layer| layer.to_string()).collect(),
            paths: Vec::new(),
            bytes: 0,
        });
        twice.paths.push(path.to_string());
        twice.bytes += bytes;
    }
    by_layers.into_values().collect()
}

/// What each attached layer leaves out: to the runtime, to `exclude`, or
/// to the layers it is stacked on.
fn provided(entry: &FunctionEntry, manifest: &Manifest, check: Option<&FunctionReport>) -> Vec<Provided> {
    let mut all = Vec::new();
    for layer in entry.layers.iter().chain(&entry.bundled) {
        let Some(excluded) = manifest
            .layers
            .get(layer)
            .and_then(|entry| entry.excluded.as_ref())
        else {
            continue;
        };
        let stacked = check.and_then(|report| report.stacked.iter().find(|stacked| &stacked.layer == layer));
        let mut runtime = Vec::new();
        let mut exclude = Vec::new();
        let mut bases = Vec::new();
        for pin in excluded {
            let name = pin.split("==").next().unwrap_or(pin);
            let shown = pin.replacen("==", " ", 1);
            if stacked.is_some_and(|stacked| stacked.distributions.contains(pin)) {
                bases.push(shown);
            } else if facts::RUNTIME_PROVIDED.contains(&normalize_dist_name(name).as_str()) {
                runtime.push(shown);
            } else {
                exclude.push(shown);
            }
        }
        for (by, distributions) in [
            (ProvidedBy::Runtime, runtime),
            (ProvidedBy::Exclude, exclude),
            (
                ProvidedBy::Bases(stacked.map(|stacked| stacked.bases.clone()).unwrap_or_default()),
                bases,
            ),
        ] {
            if !distributions.is_empty() {
                all.push(Provided {
                    layer: layer.clone(),
                    by,
                    distributions,
                });
            }
        }
    }
    all
}

/// The name a file is imported by: `pkg/mod.py` → `pkg`, `mod.py` → `mod`,
/// `_ext.cpython-311-x86_64-linux-gnu.so` → `_ext`,
/// `__pycache__/mod.cpython-311.pyc` → `mod`.
fn module_key(path: &str) -> &str {
    let mut parts = path.split('/');
    let first = parts.next().unwrap_or(path);
    if first == "__pycache__" {
        let file = path.rsplit('/').next().unwrap_or(path);
        return file.split('.').next().unwrap_or(file);
    }
    if path.contains('/') {
        first
    } else {
        first
            .split('.')
            .next()
            .filter(|stem| !stem.is_empty())
            .unwrap_or(first)
    }
}

/// Application code (a function's ZIP, a source layer) by top-level module.
fn code_groups(files: &[Listed], prefix: &str, is_twice: &dyn Fn(&str) -> bool) -> Vec<Group> {
    let mut by_module: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for file in files {
        let inner = file.path.strip_prefix(prefix).unwrap_or(&file.path);
        by_module.entry(module_key(inner)).or_default().push(file);
    }
    let mut groups: Vec<Group> = by_module
        .into_iter()
        .map(|(module, files)| {
            let bytes = files.iter().map(|file| file.size).sum();
            group(module.to_string(), None, false, bytes, false, files, is_twice)
        })
        .collect();
    sort_groups(&mut groups);
    groups
}

/// A dependency layer by distribution (the manifest's sizes), its files
/// attributed by their top-level name, and what no distribution claims.
fn distribution_groups(
    layer: &str,
    entry: &LayerEntry,
    layer_bytes: u64,
    files: &[Listed],
    unused: &BTreeSet<(String, String)>,
    is_twice: &dyn Fn(&str) -> bool,
) -> Vec<Group> {
    let mut by_top: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for (index, package) in entry.packages.iter().enumerate() {
        by_name.insert(normalize_dist_name(&package.name), index);
        for top in &package.top_level {
            by_top.entry(top.as_str()).or_insert(index);
        }
    }
    let mut owned: Vec<Vec<&Listed>> = vec![Vec::new(); entry.packages.len()];
    let mut unclaimed = Vec::new();
    for file in files {
        let inner = file.path.strip_prefix("python/").unwrap_or(&file.path);
        let first = inner.split('/').next().unwrap_or(inner);
        let owner = if let Some(stem) = first.strip_suffix(".dist-info") {
            let name = stem.split_once('-').map_or(stem, |(name, _)| name);
            by_name.get(&normalize_dist_name(name)).copied()
        } else if let Some(stem) = first.strip_suffix(".libs") {
            by_name.get(&normalize_dist_name(stem)).copied()
        } else {
            by_top.get(module_key(inner)).copied()
        };
        match owner {
            Some(index) => owned[index].push(file),
            None => unclaimed.push(file),
        }
    }
    let mut groups: Vec<Group> = entry
        .packages
        .iter()
        .zip(owned)
        .map(|(package, files)| {
            let is_unused = unused.contains(&(layer.to_string(), normalize_dist_name(&package.name)));
            group(
                package.name.clone(),
                Some(package.version.clone()),
                true,
                package.unzipped_bytes,
                is_unused,
                files,
                is_twice,
            )
        })
        .collect();
    sort_groups(&mut groups);
    let claimed: u64 = entry.packages.iter().map(|package| package.unzipped_bytes).sum();
    let rest = layer_bytes.saturating_sub(claimed);
    if rest > 0 {
        groups.push(group(
            "(no distribution)".to_string(),
            None,
            false,
            rest,
            false,
            unclaimed,
            is_twice,
        ));
    }
    groups
}

/// Largest first, then by name.
fn sort_groups(groups: &mut [Group]) {
    groups.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
}

/// A group of `bytes` with its largest files, those another layer ships
/// too, and the rest.
fn group(
    name: String,
    version: Option<String>,
    distribution: bool,
    bytes: u64,
    unused: bool,
    mut files: Vec<&Listed>,
    is_twice: &dyn Fn(&str) -> bool,
) -> Group {
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    let count = files.len();
    let (twice, single): (Vec<&Listed>, Vec<&Listed>) =
        files.into_iter().partition(|file| is_twice(&file.path));
    let twice_bytes: u64 = twice.iter().map(|file| file.size).sum();
    let mut leaves: Vec<Leaf> = single
        .iter()
        .take(LARGEST_FILES)
        .filter(|file| file.size > 0)
        .map(|file| Leaf {
            kind: LeafKind::File,
            label: file.path.clone(),
            files: 1,
            bytes: file.size,
        })
        .collect();
    if !twice.is_empty() {
        leaves.push(Leaf {
            kind: LeafKind::Twice,
            label: "shipped twice".to_string(),
            files: twice.len(),
            bytes: twice_bytes,
        });
    }
    let shown: u64 = leaves.iter().map(|leaf| leaf.bytes).sum();
    let shown_files: usize = leaves.iter().map(|leaf| leaf.files).sum();
    let rest = bytes.saturating_sub(shown);
    if rest > 0 && !leaves.is_empty() {
        let others = count.saturating_sub(shown_files);
        leaves.push(Leaf {
            kind: LeafKind::Rest,
            label: format!("{others} other file(s)"),
            files: others,
            bytes: rest,
        });
    }
    Group {
        name,
        version,
        distribution,
        bytes,
        files: count,
        unused,
        twice_files: twice.len(),
        twice_bytes,
        leaves,
    }
}

/// The comparison with the previous, different build.
pub(crate) struct Changes {
    pub previous: bool,
    pub functions: Vec<Change>,
}

pub(crate) struct Change {
    pub function: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub added: bool,
    pub removed: bool,
    pub details: Vec<String>,
}

impl Change {
    pub fn delta(&self) -> Option<i64> {
        Some(self.after? as i64 - self.before? as i64)
    }
}

fn changes(
    manifest: &Manifest,
    checks: &BTreeMap<String, FunctionReport>,
    previous: Option<&Snapshot>,
) -> Changes {
    let Some(previous) = previous else {
        return Changes {
            previous: false,
            functions: Vec::new(),
        };
    };
    let before = &previous.manifest;
    let names: BTreeSet<&String> = before.functions.keys().chain(manifest.functions.keys()).collect();
    let mut functions = Vec::new();
    for name in names {
        let old = before.functions.get(name);
        let new = manifest.functions.get(name);
        let change = Change {
            function: name.clone(),
            before: previous.totals.get(name).copied().filter(|_| old.is_some()),
            after: checks
                .get(name)
                .map(|report| report.total_unzipped_bytes)
                .filter(|_| new.is_some()),
            added: old.is_none(),
            removed: new.is_none(),
            details: Vec::new(),
        };
        let (Some(old), Some(new)) = (old, new) else {
            functions.push(change);
            continue;
        };
        let layers_changed = [old, new]
            .iter()
            .flat_map(|entry| entry.layers.iter().chain(&entry.bundled))
            .any(|layer| before.layers.get(layer) != manifest.layers.get(layer));
        if old == new && !layers_changed {
            continue;
        }
        let mut change = change;
        change.details = function_details(old, new, before, manifest);
        functions.push(change);
    }
    Changes {
        previous: true,
        functions,
    }
}

/// `twilio 9.13.0 → 9.14.0`, `added x 1.0`, `removed y 2.0`, the layers
/// attached, and each part whose size changed.
fn function_details(
    old: &FunctionEntry,
    new: &FunctionEntry,
    before: &Manifest,
    after: &Manifest,
) -> Vec<String> {
    // By layer and distribution: a function may get one from two layers.
    type Packages = BTreeMap<(String, String), (String, String)>;
    let packages = |manifest: &Manifest, entry: &FunctionEntry| -> Packages {
        let mut all = Packages::new();
        for layer in entry.layers.iter().chain(&entry.bundled) {
            for package in manifest
                .layers
                .get(layer)
                .map(|entry| entry.packages.as_slice())
                .unwrap_or_default()
            {
                all.insert(
                    (normalize_dist_name(&package.name), layer.clone()),
                    (package.name.clone(), package.version.clone()),
                );
            }
        }
        all
    };
    let (was, is) = (packages(before, old), packages(after, new));
    // The layer is named only for a distribution the function gets twice.
    let mut layers_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, layer) in was.keys().chain(is.keys()) {
        layers_of.entry(name).or_default().insert(layer);
    }
    let place = |(name, layer): &(String, String)| {
        if layers_of
            .get(name.as_str())
            .is_some_and(|layers| layers.len() > 1)
        {
            format!(" in layer {layer}")
        } else {
            String::new()
        }
    };
    let mut details = Vec::new();
    for (key, (name, version)) in &is {
        match was.get(key) {
            Some((_, old_version)) if old_version != version => {
                details.push(format!("{name} {old_version} → {version}{}", place(key)));
            }
            Some(_) => {}
            None => details.push(format!("added {name} {version}{}", place(key))),
        }
    }
    for (key, (name, version)) in &was {
        if !is.contains_key(key) {
            details.push(format!("removed {name} {version}{}", place(key)));
        }
    }
    if old.layers != new.layers {
        details.push(format!(
            "layers [{}] → [{}]",
            old.layers.join(", "),
            new.layers.join(", ")
        ));
    }
    if old.bundled != new.bundled {
        details.push(format!(
            "bundled [{}] → [{}]",
            old.bundled.join(", "),
            new.bundled.join(", ")
        ));
    }
    let code = new.zip.unzipped_bytes as i64 - old.zip.unzipped_bytes as i64;
    if code != 0 {
        details.push(format!("function code {}", html::signed_bytes(code)));
    } else if old.zip.sha256 != new.zip.sha256 {
        details.push("function code changed, same size".to_string());
    }
    for layer in &new.layers {
        if !old.layers.contains(layer) {
            continue;
        }
        let size = |manifest: &Manifest| manifest.layers.get(layer).map_or(0, |entry| entry.unzipped_bytes);
        let delta = size(after) as i64 - size(before) as i64;
        if delta != 0 {
            details.push(format!("layer {layer} {}", html::signed_bytes(delta)));
        } else if before.layers.get(layer).and_then(|entry| entry.sha256.as_ref())
            != after.layers.get(layer).and_then(|entry| entry.sha256.as_ref())
        {
            details.push(format!("layer {layer} changed, same size"));
        }
    }
    let settings = |entry: &FunctionEntry| {
        (
            entry.memory_mb,
            entry.timeout_s,
            entry.ephemeral_storage_mb,
            entry.environment.clone(),
            entry.reserved_concurrency,
            entry.log_retention_days,
            entry.handler.clone(),
            entry.runtime.clone(),
            entry.architecture.clone(),
        )
    };
    if settings(old) != settings(new) {
        details.push("settings (handler, runtime, memory, timeout…)".to_string());
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, size: u64) -> Listed {
        Listed {
            path: path.to_string(),
            size,
        }
    }

    #[test]
    fn module_keys() {
        assert_eq!(module_key("pkg/sub/mod.pyc"), "pkg");
        assert_eq!(module_key("mod.py"), "mod");
        assert_eq!(
            module_key("_cffi_backend.cpython-311-x86_64-linux-gnu.so"),
            "_cffi_backend"
        );
        assert_eq!(module_key("__pycache__/handler.cpython-311.pyc"), "handler");
        assert_eq!(module_key(".hidden"), ".hidden");
    }

    #[test]
    fn a_group_shows_its_largest_files_what_ships_twice_and_the_rest() {
        let files = [
            listed("a/1", 50),
            listed("a/2", 40),
            listed("a/3", 30),
            listed("a/4", 20),
            listed("a/5", 10),
            listed("a/6", 5),
            listed("a/dup", 25),
        ];
        let group = group(
            "a".into(),
            None,
            false,
            200,
            false,
            files.iter().collect(),
            &|path| path == "a/dup",
        );
        let leaves: Vec<(LeafKind, &str, u64)> = group
            .leaves
            .iter()
            .map(|leaf| (leaf.kind, leaf.label.as_str(), leaf.bytes))
            .collect();
        assert_eq!(
            leaves,
            vec![
                (LeafKind::File, "a/1", 50),
                (LeafKind::File, "a/2", 40),
                (LeafKind::File, "a/3", 30),
                (LeafKind::File, "a/4", 20),
                (LeafKind::Twice, "shipped twice", 25),
                (LeafKind::Rest, "2 other file(s)", 35),
            ]
        );
        assert_eq!((group.files, group.twice_files, group.twice_bytes), (7, 1, 25));
        let total: u64 = group.leaves.iter().map(|leaf| leaf.bytes).sum();
        assert_eq!(total, group.bytes, "the leaves fill the group");
    }

    fn snapshot(version: &str) -> Snapshot {
        let manifest = Manifest {
            runtime: version.to_string(),
            ..Manifest::default()
        };
        Snapshot {
            manifest,
            totals: BTreeMap::new(),
        }
    }

    fn package(name: &str, version: &str, bytes: u64) -> crate::config::manifest::Package {
        crate::config::manifest::Package {
            name: name.into(),
            version: version.into(),
            unzipped_bytes: bytes,
            top_level: vec![name.into()],
            requires: vec![],
        }
    }

    /// sms with the layers core and sms, twilio at `twilio`'s version and size.
    fn build(twilio: (&str, u64), handler_bytes: u64) -> Manifest {
        use crate::config::manifest::ZipFacts;
        let zip = |path: &str, bytes: u64| ZipFacts {
            zip: path.into(),
            sha256: format!("{path}{bytes}"),
            base64sha256: String::new(),
            zipped_bytes: bytes / 2,
            unzipped_bytes: bytes,
            files: 1,
        };
        let mut manifest = Manifest::default();
        let mut core = LayerEntry::built(
            LayerKind::Requirements,
            zip("dist/layers/core.zip", 1000),
            "k".into(),
        );
        core.packages = vec![package("requests", "2.34.2", 1000)];
        let mut sms = LayerEntry::built(
            LayerKind::Requirements,
            zip("dist/layers/sms.zip", twilio.1),
            "k".into(),
        );
        sms.packages = vec![package("twilio", twilio.0, twilio.1)];
        manifest.layers.insert("core".into(), core);
        manifest.layers.insert("sms".into(), sms);
        manifest.functions.insert(
            "sms".into(),
            FunctionEntry {
                zip: zip("dist/functions/sms.zip", handler_bytes),
                handler: "sms_handler.lambda_handler".into(),
                runtime: "python3.11".into(),
                architecture: "x86_64".into(),
                layers: vec!["core".into(), "sms".into()],
                bundled: vec![],
                upload: "direct".into(),
                input_sha256: "k".into(),
                memory_mb: 256,
                timeout_s: 15,
                ephemeral_storage_mb: 512,
                environment: BTreeMap::new(),
                reserved_concurrency: None,
                log_retention_days: 14,
            },
        );
        manifest
    }

    fn totals(manifest: &Manifest) -> BTreeMap<String, u64> {
        let sms = &manifest.functions["sms"];
        let total = sms.zip.unzipped_bytes
            + sms
                .layers
                .iter()
                .map(|layer| manifest.layers[layer].unzipped_bytes)
                .sum::<u64>();
        BTreeMap::from([("sms".to_string(), total)])
    }

    #[test]
    fn changes_name_versions_and_sizes() {
        let before = build(("9.13.0", 25_000_000), 6000);
        let after = build(("9.14.0", 27_202_009), 6000);
        let previous = Snapshot {
            totals: totals(&before),
            manifest: before,
        };
        let report: FunctionReport = serde_json::from_value(serde_json::json!({
            "layers": [], "function_unzipped_bytes": 0, "total_unzipped_bytes": totals(&after)["sms"],
            "limit_bytes": 0, "headroom_bytes": 0, "budget_bytes": null, "budget_headroom_bytes": null,
            "zipped_bytes": 0, "upload": "direct", "largest": [], "imports": {"provided": {}, "runtime": [],
            "missing": [], "unused": [], "shadowing": [], "unparsable": []}, "warnings": [], "errors": [], "ok": true
        }))
        .unwrap();
        let checks = BTreeMap::from([("sms".to_string(), report)]);
        let found = changes(&after, &checks, Some(&previous));
        assert!(found.previous);
        let [sms] = found.functions.as_slice() else {
            panic!("one function changed")
        };
        assert_eq!(sms.delta(), Some(2_202_009));
        assert_eq!(
            sms.details,
            ["twilio 9.13.0 → 9.14.0", "layer sms +2.1 MiB"],
            "{:?}",
            sms.details
        );
        let unchanged = changes(&previous.manifest, &BTreeMap::new(), Some(&previous));
        assert!(unchanged.functions.is_empty());
        assert!(!changes(&after, &checks, None).previous, "no previous build");
    }

    #[test]
    fn the_history_keeps_the_last_different_build() {
        let history = History::default().advance(snapshot("a"));
        assert!(history.previous.is_none());
        let history = history.advance(snapshot("a"));
        assert!(history.previous.is_none(), "the same build is no change");
        let history = history.advance(snapshot("b"));
        assert_eq!(history.previous.as_ref().unwrap().manifest.runtime, "a");
        let mut same = snapshot("b");
        same.totals.insert("f".into(), 7);
        let history = history.advance(same);
        assert_eq!(history.previous.as_ref().unwrap().manifest.runtime, "a", "kept");
        assert_eq!(history.current.as_ref().unwrap().totals["f"], 7, "totals learnt");
    }
}
