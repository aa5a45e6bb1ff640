//! What the page shows, computed once from the manifest, the verdicts and
//! the ZIPs' listings: each function as its parts (its own code, then each
//! attached layer in Lambda's order; an image function as its image
//! layers, bottom to top: the base's, one per layer, its code), each part
//! as groups (distributions or top-level modules) and each group as leaves
//! (its largest files, what another layer ships too, the rest). Nothing
//! here writes HTML.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::audit::Shown;
use super::changes::{changes, Changes};
use super::groups::{code_groups, distribution_groups, Group};
use super::history::Snapshot;
use crate::config::manifest::{
    FunctionEntry, ImageEntry, LayerKind, Manifest, IMAGE_BASE_LAYER, IMAGE_FUNCTION_LAYER,
};
use crate::config::Config;
use crate::facts::{self, normalize_dist_name};
use crate::steps::limits::FunctionReport;
use crate::steps::smoke::Outcome;
use crate::store::archive::{self, Listed};

/// The file listings of every built ZIP the manifest names, by its path.
pub(super) struct Listings(BTreeMap<String, Vec<Listed>>);

impl Listings {
    /// An image function's ZIP is listed where there is one: its code is
    /// in its image, and the same files in that ZIP only when one was written.
    pub(super) fn read(root: &Path, manifest: &Manifest) -> Result<Listings> {
        let zips = manifest
            .layers
            .values()
            .filter_map(|layer| layer.zip.clone())
            .chain(
                manifest
                    .functions
                    .values()
                    .filter(|function| {
                        function.image.is_none()
                            || (!function.zip.zip.is_empty() && root.join(&function.zip.zip).is_file())
                    })
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
    /// What the last `audit` found for this very build, if it did.
    pub advisories: Shown,
}

pub(crate) struct FunctionView<'a> {
    pub name: &'a str,
    pub entry: &'a FunctionEntry,
    pub check: Option<&'a FunctionReport>,
    pub smoke: Option<&'a Outcome>,
    pub budget: Option<u64>,
    /// Lambda's limit for it: a ZIP's with its layers, or an image's.
    pub limit: u64,
    /// An image function's image: then the budget counts all but its
    /// base's layers (`base_bytes`).
    pub image: Option<&'a ImageEntry>,
    pub base_bytes: u64,
    /// Its own code, then each attached layer in Lambda's order; for an
    /// image its base, each of its layers, then its code.
    pub parts: Vec<Part>,
    /// Files that two or more attached layers ship, grouped by the layers.
    pub twice: Vec<Twice>,
    /// What its layers leave out because something else provides it.
    pub provided: Vec<Provided>,
    /// How many of the distributions it ships declare each licence (`None`:
    /// none declared), most first; its SBOM lists them one by one.
    pub licenses: Vec<(Option<String>, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartKind {
    /// An image's base: its layers together.
    Base,
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
            advisories: Shown::NotAudited,
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
    let image = entry.image.as_ref();
    let code_bytes = match (check, image) {
        (Some(report), _) => report.function_unzipped_bytes,
        (None, Some(image)) => image_layer_bytes(image, IMAGE_FUNCTION_LAYER),
        (None, None) => entry.zip.unzipped_bytes,
    };
    let code = Part {
        kind: PartKind::Function,
        name: name.to_string(),
        bytes: code_bytes,
        groups: code_groups(listings.of(Some(&entry.zip.zip)), "", &|_| false),
    };
    let attached = Attached {
        manifest,
        listings,
        twice_paths: twice_paths(&twice),
        unused: unused_distributions(check),
    };
    let layers = shares.iter().map(|(layer, bytes)| attached.part(layer, *bytes));
    let base_bytes = image.map_or(0, |image| image_layer_bytes(image, IMAGE_BASE_LAYER));
    let parts = match image {
        Some(image) => {
            let base = Part {
                kind: PartKind::Base,
                name: image.base.clone(),
                bytes: base_bytes,
                groups: Vec::new(),
            };
            std::iter::once(base).chain(layers).chain([code]).collect()
        }
        None => std::iter::once(code).chain(layers).collect(),
    };
    FunctionView {
        name,
        entry,
        check,
        smoke,
        budget,
        limit: if image.is_some() {
            facts::MAX_IMAGE_BYTES
        } else {
            facts::MAX_UNZIPPED_BYTES
        },
        image,
        base_bytes,
        parts,
        twice,
        provided: provided(entry, manifest, check),
        licenses: license_counts(entry, manifest),
    }
}

/// The declared licences of the distributions a function ships (attached,
/// bundled or in its image), counted, most first, then by name.
fn license_counts(entry: &FunctionEntry, manifest: &Manifest) -> Vec<(Option<String>, usize)> {
    let mut counts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for layer in entry.contents().iter().chain(&entry.bundled) {
        for package in manifest
            .layers
            .get(layer)
            .map_or(&[][..], |layer| &layer.packages)
        {
            *counts.entry(package.license.clone()).or_insert(0) += 1;
        }
    }
    let mut counts: Vec<(Option<String>, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// The bytes of an image's layers named `name`, uncompressed.
fn image_layer_bytes(image: &ImageEntry, name: &str) -> u64 {
    image
        .layers
        .iter()
        .filter(|layer| layer.name == name)
        .map(|layer| layer.unpacked_bytes)
        .sum()
}

/// Each attached layer's bytes, in Lambda's order (an image's own layers,
/// in its order): as the check measured them, else as the manifest has them.
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
            .contents()
            .into_iter()
            .map(|layer| {
                let bytes = match &entry.image {
                    Some(image) => image_layer_bytes(image, &layer),
                    None => manifest
                        .layers
                        .get(&layer)
                        .map_or(0, |entry| entry.unzipped_bytes),
                };
                (layer, bytes)
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
    for layer in entry.contents().iter().chain(&entry.bundled) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::manifest::{ImageLayerEntry, LayerEntry, ZipFacts, PACKAGE_IMAGE};

    const MIB: u64 = 1 << 20;

    fn layer(name: &str, bytes: u64) -> ImageLayerEntry {
        ImageLayerEntry {
            name: name.into(),
            digest: format!("sha256:{}", "11".repeat(32)),
            compressed_bytes: bytes / 2,
            unpacked_bytes: bytes,
        }
    }

    /// `model`, an image on `core` and `shared`, built but not pushed;
    /// checked (with a 10 MiB budget) when `checked`.
    fn page(checked: bool) -> (Vec<(PartKind, String, u64)>, u64, String) {
        let root = tempfile::tempdir().unwrap();
        for dir in ["layers/core", "lambdas/shared", "lambdas/model"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("layers/core/requirements.txt"), "").unwrap();
        let value = json!({
            "runtime": "python3.11",
            "budget": "10 MiB",
            "layers": {
                "core": {"requirements": "layers/core/requirements.txt"},
                "shared": {"source": "lambdas/shared"},
            },
            "functions": {"model": {
                "source": "lambdas/model",
                "handler": "model.lambda_handler",
                "package": "image",
                "layers": ["core", "shared"],
            }},
        });
        let config = Config::from_value(root.path(), &value).unwrap();
        let mut manifest = Manifest {
            runtime: "python3.11".into(),
            architecture: "x86_64".into(),
            ..Manifest::default()
        };
        let mut core = LayerEntry::external("unused", 3 * MIB);
        core.kind = LayerKind::Requirements;
        core.arn = None;
        let mut shared = core.clone();
        shared.kind = LayerKind::Source;
        manifest.layers.insert("core".into(), core);
        manifest.layers.insert("shared".into(), shared);
        let layers = vec![
            layer("base", 200 * MIB),
            layer("base", 100 * MIB),
            layer("core", 4 * MIB),
            layer("shared", MIB),
            layer("function", 2 * MIB),
        ];
        let digest = format!("sha256:{}", "66".repeat(32));
        let entry = FunctionEntry {
            zip: ZipFacts::default(),
            handler: "model.lambda_handler".into(),
            runtime: "python3.11".into(),
            architecture: "x86_64".into(),
            layers: Vec::new(),
            bundled: Vec::new(),
            upload: "direct".into(),
            input_sha256: "33".repeat(32),
            memory_mb: 1024,
            timeout_s: 30,
            ephemeral_storage_mb: 512,
            environment: BTreeMap::new(),
            reserved_concurrency: None,
            log_retention_days: 30,
            package_type: PACKAGE_IMAGE.into(),
            image: Some(ImageEntry {
                base: format!("public.ecr.aws/lambda/python@sha256:{}", "55".repeat(32)),
                digest: digest.clone(),
                layout: "dist/images/model".into(),
                repository: None,
                uri: None,
                unpacked_bytes: 307 * MIB,
                compressed_bytes: 150 * MIB,
                layers,
            }),
        };
        manifest.functions.insert("model".into(), entry);
        let mut checks = BTreeMap::new();
        if checked {
            let report: FunctionReport = serde_json::from_value(json!({
                "layers": [{"name": "core", "unzipped_bytes": 4 * MIB}, {"name": "shared", "unzipped_bytes": MIB}],
                "function_unzipped_bytes": 2 * MIB, "total_unzipped_bytes": 307 * MIB,
                "limit_bytes": facts::MAX_IMAGE_BYTES, "headroom_bytes": (facts::MAX_IMAGE_BYTES - 307 * MIB),
                "budget_bytes": 10 * MIB, "budget_headroom_bytes": 3 * MIB,
                "zipped_bytes": 150 * MIB, "upload": "direct", "largest": [],
                "imports": {"provided": {}, "runtime": [], "missing": [], "unused": [], "shadowing": [], "unparsable": []},
                "warnings": [], "errors": [], "ok": true,
                "image": {"base": "b", "base_layers": 2, "base_bytes": 300 * MIB, "shipped_bytes": 7 * MIB, "digest": digest},
            }))
            .unwrap();
            checks.insert("model".to_string(), report);
        }
        let smokes = BTreeMap::new();
        let listings =
            Listings::read(root.path(), &manifest).expect("an image function needs no ZIP of its own");
        let model = Model::new(&config, &manifest, &checks, &smokes, &listings, None);
        let view = &model.functions[0];
        let parts = view
            .parts
            .iter()
            .map(|part| (part.kind, part.name.clone(), part.bytes))
            .collect();
        (parts, view.limit, super::super::html::page(&model))
    }

    #[test]
    fn an_image_function_shows_as_its_image_layers_against_the_image_limit() {
        for checked in [false, true] {
            let (parts, limit, page) = page(checked);
            let base = format!("public.ecr.aws/lambda/python@sha256:{}", "55".repeat(32));
            assert_eq!(
                parts,
                [
                    (PartKind::Base, base.clone(), 300 * MIB),
                    (PartKind::Dependency, "core".to_string(), 4 * MIB),
                    (PartKind::Source, "shared".to_string(), MIB),
                    (PartKind::Function, "model".to_string(), 2 * MIB),
                ],
                "bottom to top: the base, each layer, the code"
            );
            assert_eq!(limit, facts::MAX_IMAGE_BYTES);
            assert!(page.contains("data-limit-bytes=\"10737418240\""), "{page}");
            assert!(page.contains(&format!(
                "Image <code>sha256:{}</code>, not pushed yet, on <code>{base}</code>",
                "66".repeat(32)
            )));
            assert!(page.contains("<td>base image</td>"));
            assert!(page.contains("2 image layer(s) of the base, by digest; not counted by the budget"));
            assert!(page.contains("10,737,418,240 bytes (10.0 GiB) uncompressed for a container image"));
            if checked {
                assert!(page.contains(
                    "321,912,832 bytes (307.0 MiB) uncompressed as a container image, its base's 300.0 MiB included; \
                     its own layers 7.0 MiB: 70.0% of the 10.0 MiB budget, 3.0% of Lambda's image limit"
                ), "{page}");
                // The budget's dashed line stands where the base ends plus the budget.
                assert!(
                    page.contains(&format!("class=\"budget\" data-bytes=\"{}\"", 10 * MIB)),
                    "{page}"
                );
            }
        }
    }
}
