//! What the page shows, computed once from the manifest, the verdicts and
//! the ZIPs' listings: each function as its parts (its own code, then each
//! attached layer in Lambda's order), each part as groups (distributions or
//! top-level modules) and each group as leaves (its largest files, what
//! another layer ships too, the rest). Nothing here writes HTML.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::changes::{changes, Changes};
use super::groups::{code_groups, distribution_groups, Group};
use super::history::Snapshot;
use crate::config::manifest::{FunctionEntry, LayerKind, Manifest};
use crate::config::Config;
use crate::facts::{self, normalize_dist_name};
use crate::steps::limits::FunctionReport;
use crate::steps::smoke::Outcome;
use crate::store::archive::{self, Listed};

/// The file listings of every built ZIP the manifest names, by its path.
pub(super) struct Listings(BTreeMap<String, Vec<Listed>>);

impl Listings {
    pub(super) fn read(root: &Path, manifest: &Manifest) -> Result<Listings> {
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
    pub(super) fn new(
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
    let shares = layer_shares(entry, manifest, check);
    let twice = shipped_twice(&shares, manifest, listings);
    let mut parts = vec![Part {
        kind: PartKind::Function,
        name: name.to_string(),
        bytes: check.map_or(entry.zip.unzipped_bytes, |report| report.function_unzipped_bytes),
        groups: code_groups(listings.of(Some(&entry.zip.zip)), "", &|_| false),
    }];
    let attached = Attached {
        manifest,
        listings,
        twice_paths: twice_paths(&twice),
        unused: unused_distributions(check),
    };
    parts.extend(shares.iter().map(|(layer, bytes)| attached.part(layer, *bytes)));
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

/// Each attached layer's bytes, in Lambda's order: as the check measured
/// them, else as the manifest has them.
fn layer_shares(
    entry: &FunctionEntry,
    manifest: &Manifest,
    check: Option<&FunctionReport>,
) -> Vec<(String, u64)> {
    match check {
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
    }
}

/// Every (layer, path) that another attached layer ships too.
fn twice_paths(twice: &[Twice]) -> BTreeSet<(&str, &str)> {
    let mut paths = BTreeSet::new();
    for twice in twice {
        for layer in &twice.layers {
            paths.extend(twice.paths.iter().map(|path| (layer.as_str(), path.as_str())));
        }
    }
    paths
}

/// (layer, normalised distribution) of what nothing the function reaches imports.
fn unused_distributions(check: Option<&FunctionReport>) -> BTreeSet<(String, String)> {
    check
        .map(|report| {
            report
                .imports
                .unused
                .iter()
                .map(|unused| (unused.layer.clone(), normalize_dist_name(&unused.distribution)))
                .collect()
        })
        .unwrap_or_default()
}

/// What the parts of one function's attached layers are made from.
struct Attached<'m> {
    manifest: &'m Manifest,
    listings: &'m Listings,
    twice_paths: BTreeSet<(&'m str, &'m str)>,
    unused: BTreeSet<(String, String)>,
}

impl Attached<'_> {
    /// One attached layer as a part: an external one (or one the manifest
    /// does not have) whole, a source layer by module, a dependency layer
    /// by distribution.
    fn part(&self, layer: &String, bytes: u64) -> Part {
        let Some(built) = self.manifest.layers.get(layer) else {
            return Part {
                kind: PartKind::External,
                name: layer.clone(),
                bytes,
                groups: Vec::new(),
            };
        };
        let files = self.listings.of(built.zip.as_deref());
        let is_twice = |path: &str| self.twice_paths.contains(&(layer.as_str(), path));
        let (kind, groups) = match built.kind {
            LayerKind::External => (PartKind::External, Vec::new()),
            LayerKind::Source => (PartKind::Source, code_groups(files, "python/", &is_twice)),
            LayerKind::Requirements => (
                PartKind::Dependency,
                distribution_groups(layer, built, bytes, files, &self.unused, &is_twice),
            ),
        };
        Part {
            kind,
            name: layer.clone(),
            bytes,
            groups,
        }
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
