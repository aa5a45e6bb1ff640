//! The check of one function together with its layers, before deploy:
//! unzipped size against AWS's limit and the team's budgets, zipped size
//! against direct upload, the number of layers, files two layers both ship,
//! and the imports of its code against what its layers provide.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::manifest::{BuiltView, FunctionEntry, LayerEntry, LayerKind, Manifest};
use crate::config::{Config, Function};
use crate::facts;
use crate::progress::human_bytes;
use crate::python::imports::{self, Analysis, Provider};
use crate::store::archive;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionReport {
    pub layers: Vec<LayerShare>,
    pub function_unzipped_bytes: u64,
    pub total_unzipped_bytes: u64,
    pub limit_bytes: u64,
    pub headroom_bytes: i64,
    pub budget_bytes: Option<u64>,
    pub budget_headroom_bytes: Option<i64>,
    pub zipped_bytes: u64,
    pub upload: String,
    pub largest: Vec<(String, u64)>,
    /// What each attached stacked profile leaves to its bases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacked: Vec<Stacked>,
    pub imports: imports::Report,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
    pub ok: bool,
}

/// A stacked profile's saving for one function: the distributions its
/// bases provide, which it does not ship again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stacked {
    pub layer: String,
    pub bases: Vec<String>,
    pub distributions: Vec<String>,
    pub saved_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerShare {
    pub name: String,
    pub unzipped_bytes: u64,
}

/// For each attached stacked profile, what its bases provide instead: the
/// distributions it left out and their size in the bases' layers.
fn stacked(config: &Config, manifest: &Manifest, function: &Function) -> Vec<Stacked> {
    let platform = config.platform_of(function);
    let mut all = Vec::new();
    for name in &function.layers {
        let bases: Vec<String> = crate::config::bases_of(&config.layers, name)
            .into_iter()
            .map(|base| config.variant(base, platform))
            .collect();
        if bases.is_empty() {
            continue;
        }
        let name = config.attached(function, name);
        let left_out: Vec<&String> = manifest
            .layers
            .get(&name)
            .and_then(|layer| layer.excluded.as_ref())
            .into_iter()
            .flatten()
            .collect();
        let mut distributions = Vec::new();
        let mut saved_bytes = 0;
        for base in &bases {
            let packages = manifest
                .layers
                .get(base)
                .map(|layer| layer.packages.as_slice())
                .unwrap_or_default();
            for package in packages {
                let pin = format!("{}=={}", package.name, package.version);
                if left_out.contains(&&pin) && !distributions.contains(&pin) {
                    saved_bytes += package.unzipped_bytes;
                    distributions.push(pin);
                }
            }
        }
        all.push(Stacked {
            layer: name,
            bases,
            distributions,
            saved_bytes,
        });
    }
    all
}

/// The files of the built layers, read once per run for overlap checks.
#[derive(Default)]
struct Listings(Mutex<BTreeMap<String, Arc<Vec<String>>>>);

impl Listings {
    fn of(&self, config: &Config, zip: &str) -> Result<Arc<Vec<String>>> {
        if let Some(files) = self.0.lock().expect("listings lock").get(zip) {
            return Ok(files.clone());
        }
        let files: Vec<String> = archive::list_zip(&config.root.join(zip))?
            .into_iter()
            .map(|listed| listed.path)
            .collect();
        let files = Arc::new(files);
        self.0
            .lock()
            .expect("listings lock")
            .insert(zip.to_string(), files.clone());
        Ok(files)
    }
}

/// What the checks of the functions of one run share: what is built (the
/// graph checks nothing before what it checks is up to date), one analysis
/// of every source, and the file listings of the built layers.
pub struct Limits<'a> {
    config: &'a Config,
    built: &'a BuiltView<'a>,
    analysis: Analysis,
    listings: Listings,
}

impl<'a> Limits<'a> {
    /// Analyses the sources of every function and source layer with `parser`.
    pub fn new(config: &'a Config, built: &'a BuiltView<'a>, parser: &Path) -> Result<Limits<'a>> {
        Ok(Limits {
            config,
            built,
            analysis: imports::analyse_sources(config, parser)?,
            listings: Listings::default(),
        })
    }

    /// Checks `function` with the layers the manifest records for it.
    pub fn check_function(&self, function: &Function) -> Result<FunctionReport> {
        let (config, manifest) = (self.config, self.built.manifest);
        let entry = manifest
            .functions
            .get(&function.name)
            .ok_or_else(|| anyhow::anyhow!("function `{}` is not built", function.name))?;
        let mut report = FunctionReport::new(config, manifest, function, entry);
        let mut zips = BTreeMap::new();
        for name in &entry.layers {
            let built = self.layer(function, name)?;
            report.total_unzipped_bytes += built.unzipped_bytes;
            report.layers.push(LayerShare {
                name: name.clone(),
                unzipped_bytes: built.unzipped_bytes,
            });
            if let Some(zip) = &built.zip {
                zips.insert(name.clone(), self.listings.of(config, zip)?);
            }
        }
        check_sizes(&mut report, manifest, &entry.layers);
        check_overlaps(&mut report, &entry.layers, &zips);
        self.check_imports(&mut report, function, entry)?;
        judge_imports(&mut report, &self.built.providers, &function.name);
        report.ok = report.errors.is_empty();
        Ok(report)
    }

    fn layer(&self, function: &Function, name: &String) -> Result<&'a LayerEntry> {
        self.built
            .manifest
            .layers
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("layer `{name}` of function `{}` is not built", function.name))
    }

    /// The imports of the function's code against what the layers it can
    /// import from provide (attached, or bundled into its ZIP), and their
    /// largest distributions.
    fn check_imports(
        &self,
        report: &mut FunctionReport,
        function: &Function,
        entry: &FunctionEntry,
    ) -> Result<()> {
        let reachable_layers = if entry.bundled.is_empty() {
            &entry.layers
        } else {
            &entry.bundled
        };
        let mut providers = Vec::new();
        let mut packages = Vec::new();
        for name in reachable_layers {
            let built = self.layer(function, name)?;
            if built.kind == LayerKind::Requirements {
                providers.push(Provider {
                    layer: name,
                    packages: &built.packages,
                });
                packages.extend(
                    built
                        .packages
                        .iter()
                        .map(|package| (package.name.clone(), package.unzipped_bytes)),
                );
            }
        }
        packages.sort_by_key(|package| std::cmp::Reverse(package.1));
        report.largest = packages.into_iter().take(3).collect();
        let code = imports::function_code(self.config, &function.name, reachable_layers, &self.analysis)?;
        report.imports = imports::check(&code, &providers, &self.analysis.stdlib);
        Ok(())
    }
}

impl FunctionReport {
    /// The report before any check: the function's own figures.
    fn new(
        config: &Config,
        manifest: &Manifest,
        function: &Function,
        entry: &FunctionEntry,
    ) -> FunctionReport {
        FunctionReport {
            layers: Vec::new(),
            function_unzipped_bytes: entry.zip.unzipped_bytes,
            total_unzipped_bytes: entry.zip.unzipped_bytes,
            limit_bytes: facts::MAX_UNZIPPED_BYTES,
            headroom_bytes: 0,
            budget_bytes: config.budget_for(function),
            budget_headroom_bytes: None,
            zipped_bytes: entry.zip.zipped_bytes,
            upload: entry.upload.clone(),
            largest: Vec::new(),
            stacked: stacked(config, manifest, function),
            imports: imports::Report::default(),
            warnings: Vec::new(),
            errors: Vec::new(),
            ok: true,
        }
    }
}

fn check_sizes(report: &mut FunctionReport, manifest: &Manifest, layers: &[String]) {
    let total = report.total_unzipped_bytes;
    report.headroom_bytes = facts::MAX_UNZIPPED_BYTES as i64 - total as i64;
    if report.headroom_bytes < 0 {
        report.errors.push(format!(
            "unzipped size {total} bytes exceeds Lambda's limit of {} bytes by {} bytes ({})",
            facts::MAX_UNZIPPED_BYTES,
            -report.headroom_bytes,
            human_bytes(report.headroom_bytes.unsigned_abs())
        ));
    }
    if let Some(budget) = report.budget_bytes {
        let headroom = budget as i64 - total as i64;
        report.budget_headroom_bytes = Some(headroom);
        if headroom < 0 {
            report.errors.push(format!(
                "unzipped size {} is over the budget of {} by {}",
                human_bytes(total),
                human_bytes(budget),
                human_bytes(headroom.unsigned_abs())
            ));
        }
    }
    if layers.len() > facts::MAX_LAYERS {
        report.errors.push(format!(
            "{} layers attached; Lambda allows {}",
            layers.len(),
            facts::MAX_LAYERS
        ));
    }
    if report.zipped_bytes > facts::MAX_DIRECT_UPLOAD_BYTES {
        report.warnings.push(format!(
            "the function ZIP is {} zipped, over the {} direct upload limit: it must be deployed through S3 (the manifest says upload = \"s3\")",
            human_bytes(report.zipped_bytes),
            human_bytes(facts::MAX_DIRECT_UPLOAD_BYTES)
        ));
    }
    for name in layers {
        let zipped = manifest
            .layers
            .get(name)
            .and_then(|layer| layer.zipped_bytes)
            .unwrap_or(0);
        if zipped > facts::MAX_DIRECT_UPLOAD_BYTES {
            report.warnings.push(format!(
                "layer `{name}` is {} zipped, over the direct upload limit: publish it through S3",
                human_bytes(zipped)
            ));
        }
    }
}

/// Files two attached layers both ship: the later layer's copy wins at
/// run time, and the earlier one is dead weight (or a version clash).
fn check_overlaps(
    report: &mut FunctionReport,
    layers: &[String],
    listings: &BTreeMap<String, Arc<Vec<String>>>,
) {
    for (index, earlier) in layers.iter().enumerate() {
        for later in &layers[index + 1..] {
            let (Some(a), Some(b)) = (listings.get(earlier), listings.get(later)) else {
                continue;
            };
            let a: BTreeSet<&String> = a.iter().collect();
            let shared: Vec<&String> = b.iter().filter(|path| a.contains(path)).collect();
            if shared.is_empty() {
                continue;
            }
            let mut tops: BTreeSet<&str> = BTreeSet::new();
            for path in &shared {
                let inner = path.strip_prefix("python/").unwrap_or(path);
                let top = inner.split('/').next().unwrap_or(inner);
                if !top.ends_with(".dist-info") {
                    tops.insert(top);
                }
            }
            let tops: Vec<&str> = tops.into_iter().take(8).collect();
            report.warnings.push(format!(
                "layers `{earlier}` and `{later}` both ship {} file(s) ({}{}): `{later}`'s copy wins at run time",
                shared.len(),
                tops.join(", "),
                if tops.len() == 8 { ", …" } else { "" }
            ));
        }
    }
}

/// `providers`: which configured layers provide each top-level module, to
/// name the one a missing import would come from.
fn judge_imports(report: &mut FunctionReport, providers: &BTreeMap<String, Vec<String>>, function: &str) {
    for missing in &report.imports.missing {
        let hint = providers
            .get(&missing.name)
            .and_then(|layers| layers.first().cloned());
        let hint = match hint {
            Some(layer) => format!("layer `{layer}` provides it but is not attached to `{function}`"),
            None => {
                "no layer provides it and it is neither standard library nor runtime-provided".to_string()
            }
        };
        let message = format!(
            "imports `{}` ({}, line {}): {hint}",
            missing.name, missing.module, missing.line
        );
        if missing.guarded {
            report
                .warnings
                .push(format!("{message} (guarded by except ImportError)"));
        } else {
            report.errors.push(message);
        }
    }
    for unused in &report.imports.unused {
        report.warnings.push(format!(
            "{} {} in layer `{}` is unused: nothing `{function}` reaches imports it ({})",
            unused.distribution,
            unused.version,
            unused.layer,
            human_bytes(unused.unzipped_bytes)
        ));
    }
    for shadow in &report.imports.shadowing {
        report.warnings.push(shadow.clone());
    }
    for error in &report.imports.unparsable {
        report.errors.push(format!("cannot parse {error}"));
    }
}
