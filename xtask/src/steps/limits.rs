//! The check of one function together with its layers, before deploy:
//! unzipped size against AWS's limit and the team's budgets, zipped size
//! against direct upload, the number of layers, files two layers both ship,
//! and the imports of its code against what its layers provide.
//!
//! An image function (`package = "image"`) is checked as its image: every
//! layer uncompressed, the base's included, against Lambda's image limit;
//! the team's budget against what the team ships (the image's layers but
//! the base's); files two of its layers both ship and its imports as for a
//! ZIP, its "layers" being the image layers made from the manifest's
//! layers ([`FunctionEntry::contents`]). Nothing is attached, so neither
//! the number of layers nor direct upload applies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::manifest::{
    BuiltView, FunctionEntry, ImageEntry, LayerEntry, LayerKind, Manifest, IMAGE_BASE_LAYER,
    IMAGE_FUNCTION_LAYER,
};
use crate::config::{Config, Function};
use crate::facts;
use crate::ground::progress::human_bytes;
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
    /// An image function's image: then `layers` are its own image layers,
    /// `function_unzipped_bytes` its code's, `total_unzipped_bytes` the
    /// whole image uncompressed (the base's included) against `limit_bytes`,
    /// Lambda's image limit, and `zipped_bytes` the image compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFigures>,
}

/// What an image adds to the figures: its base, identity, and what the
/// team ships in it (the budget's measure).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageFigures {
    /// The base, by digest.
    pub base: String,
    /// The base's layers and their bytes uncompressed.
    pub base_layers: usize,
    pub base_bytes: u64,
    /// Every layer but the base's, uncompressed: what the budget counts.
    pub shipped_bytes: u64,
    /// `sha256:…` of the image manifest, and `<repository>@<digest>` once pushed.
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl ImageFigures {
    fn new(image: &ImageEntry) -> ImageFigures {
        let (base, own): (Vec<_>, Vec<_>) = image
            .layers
            .iter()
            .partition(|layer| layer.name == IMAGE_BASE_LAYER);
        ImageFigures {
            base: image.base.clone(),
            base_layers: base.len(),
            base_bytes: base.iter().map(|layer| layer.unpacked_bytes).sum(),
            shipped_bytes: own.iter().map(|layer| layer.unpacked_bytes).sum(),
            digest: image.digest.clone(),
            uri: image.uri.clone(),
        }
    }
}

/// The uncompressed bytes of the image layer `name` (one per manifest layer).
fn image_layer_bytes(image: &ImageEntry, name: &str) -> u64 {
    image
        .layers
        .iter()
        .filter(|layer| layer.name == name)
        .map(|layer| layer.unpacked_bytes)
        .sum()
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

    /// Checks `function` with the layers the manifest records for it:
    /// those it attaches, or those its image holds.
    pub fn check_function(&self, function: &Function) -> Result<FunctionReport> {
        let (config, manifest) = (self.config, self.built.manifest);
        let entry = manifest
            .functions
            .get(&function.name)
            .ok_or_else(|| anyhow::anyhow!("function `{}` is not built", function.name))?;
        let contents = entry.contents();
        let mut report = FunctionReport::new(config, manifest, function, entry);
        let mut zips = BTreeMap::new();
        for name in &contents {
            let built = self.layer(function, name)?;
            let unzipped_bytes = match &entry.image {
                Some(image) => image_layer_bytes(image, name),
                None => {
                    report.total_unzipped_bytes += built.unzipped_bytes;
                    built.unzipped_bytes
                }
            };
            report.layers.push(LayerShare {
                name: name.clone(),
                unzipped_bytes,
            });
            if let Some(zip) = &built.zip {
                zips.insert(name.clone(), self.listings.of(config, zip)?);
            }
        }
        if entry.image.is_some() {
            check_image_sizes(&mut report);
        } else {
            check_sizes(&mut report, manifest, &function.name, &contents);
        }
        check_overlaps(&mut report, &contents, &zips);
        let shipped: Vec<&String> = contents.iter().chain(&entry.bundled).collect();
        let mut packages: Vec<(&str, &[crate::config::manifest::Package])> = Vec::new();
        for name in shipped {
            packages.push((name, &self.layer(function, name)?.packages));
        }
        let policy = config.license_policy(function);
        let (errors, warnings) = super::licenses::check(&function.name, &policy, &packages);
        report.errors.extend(errors);
        report.warnings.extend(warnings);
        self.check_imports(&mut report, function, entry, &contents)?;
        let missing_from = match entry.image {
            Some(_) => format!("is not in `{}`'s image (add it to its `layers`)", function.name),
            None => format!("is not attached to `{}`", function.name),
        };
        judge_imports(&mut report, &self.built.providers, &function.name, &missing_from);
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
    /// import from provide (attached, in its image, or bundled into its
    /// ZIP), and their largest distributions.
    fn check_imports(
        &self,
        report: &mut FunctionReport,
        function: &Function,
        entry: &FunctionEntry,
        contents: &[String],
    ) -> Result<()> {
        let reachable_layers = if entry.bundled.is_empty() {
            contents
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
        let image = entry.image.as_ref();
        FunctionReport {
            layers: Vec::new(),
            function_unzipped_bytes: image.map_or(entry.zip.unzipped_bytes, |image| {
                image_layer_bytes(image, IMAGE_FUNCTION_LAYER)
            }),
            total_unzipped_bytes: image.map_or(entry.zip.unzipped_bytes, |image| image.unpacked_bytes),
            limit_bytes: image.map_or(facts::MAX_UNZIPPED_BYTES, |_| facts::MAX_IMAGE_BYTES),
            headroom_bytes: 0,
            budget_bytes: config.budget_for(function),
            budget_headroom_bytes: None,
            zipped_bytes: image.map_or(entry.zip.zipped_bytes, |image| image.compressed_bytes),
            upload: entry.upload.clone(),
            largest: Vec::new(),
            stacked: stacked(config, manifest, function),
            imports: imports::Report::default(),
            warnings: Vec::new(),
            errors: Vec::new(),
            ok: true,
            image: image.map(ImageFigures::new),
        }
    }
}

/// An image's figures: the whole image against Lambda's image limit, what
/// the team ships in it (all but the base) against the budget.
fn check_image_sizes(report: &mut FunctionReport) {
    let Some(image) = &report.image else {
        return;
    };
    let total = report.total_unzipped_bytes;
    report.headroom_bytes = facts::MAX_IMAGE_BYTES as i64 - total as i64;
    if report.headroom_bytes < 0 {
        report.errors.push(format!(
            "image size {total} bytes uncompressed, its base's {} included, exceeds Lambda's limit of {} bytes for an image by {} bytes ({})",
            human_bytes(image.base_bytes),
            facts::MAX_IMAGE_BYTES,
            -report.headroom_bytes,
            human_bytes(report.headroom_bytes.unsigned_abs())
        ));
    }
    if let Some(budget) = report.budget_bytes {
        let shipped = image.shipped_bytes;
        let headroom = budget as i64 - shipped as i64;
        report.budget_headroom_bytes = Some(headroom);
        if headroom < 0 {
            report.errors.push(format!(
                "the image's own layers (all but the base's {}) are {}, over the budget of {} by {}",
                human_bytes(image.base_bytes),
                human_bytes(shipped),
                human_bytes(budget),
                human_bytes(headroom.unsigned_abs())
            ));
        }
    }
}

/// A ZIP's figures: with its layers against Lambda's limit (naming the
/// image a function over it could be instead) and the budget, the number
/// of layers, and direct upload.
fn check_sizes(report: &mut FunctionReport, manifest: &Manifest, function: &str, layers: &[String]) {
    let total = report.total_unzipped_bytes;
    report.headroom_bytes = facts::MAX_UNZIPPED_BYTES as i64 - total as i64;
    if report.headroom_bytes < 0 {
        let external: Vec<String> = layers
            .iter()
            .filter(|name| {
                manifest
                    .layers
                    .get(*name)
                    .is_some_and(|layer| layer.kind == LayerKind::External)
            })
            .map(|name| format!("`{name}`"))
            .collect();
        let external = if external.is_empty() {
            String::new()
        } else {
            format!(
                ", once what the external layer(s) {} hold is built here (an image cannot attach layers by ARN)",
                external.join(", ")
            )
        };
        report.errors.push(format!(
            "unzipped size {total} bytes exceeds Lambda's limit of {} bytes by {} bytes ({}): set `package = \"image\"` for `{function}` in Cargo.toml: as an image its layers would be {} on top of the base image (Lambda allows {} for an image, its base included){external}",
            facts::MAX_UNZIPPED_BYTES,
            -report.headroom_bytes,
            human_bytes(report.headroom_bytes.unsigned_abs()),
            human_bytes(total),
            human_bytes(facts::MAX_IMAGE_BYTES)
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
/// name the one a missing import would come from; `missing_from`: how the
/// function lacks it (`is not attached to `hello``).
fn judge_imports(
    report: &mut FunctionReport,
    providers: &BTreeMap<String, Vec<String>>,
    function: &str,
    missing_from: &str,
) {
    for missing in &report.imports.missing {
        let hint = providers
            .get(&missing.name)
            .and_then(|layers| layers.first().cloned());
        let hint = match hint {
            Some(layer) => format!("layer `{layer}` provides it but {missing_from}"),
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

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::json;

    use super::*;
    use crate::config::manifest::{ImageLayerEntry, Package, ZipFacts, PACKAGE_IMAGE, PACKAGE_ZIP};
    use crate::python::analyze::{Import, ModuleAnswer};
    use crate::store::archive::{Content, Entry};

    const MIB: u64 = 1 << 20;

    /// A repository of an image function `model` (on `core`, `extra`,
    /// `shared` and `more`) and a ZIP function `sms` (on `core` and the
    /// external `ext`), built: its manifest has the ZIPs of the layers,
    /// which `core` and `extra` both ship `python/common.py` in.
    struct World {
        root: tempfile::TempDir,
        config: Config,
        manifest: Manifest,
    }

    impl World {
        /// `model`'s image in the manifest, for a test to change.
        fn model_image(&mut self) -> &mut ImageEntry {
            let model = self.manifest.functions.get_mut("model").unwrap();
            model.image.as_mut().expect("model is an image function")
        }
    }

    fn zip(root: &Path, name: &str, files: &[&str]) -> ZipFacts {
        let relative = format!("dist/layers/{name}.zip");
        let entries = files
            .iter()
            .map(|path| Entry {
                path: path.to_string(),
                content: Content::Bytes(b"x = 1\n".to_vec()),
                executable: false,
            })
            .collect();
        let written = archive::write_zip(&root.join(&relative), entries).unwrap();
        ZipFacts {
            zip: relative,
            sha256: "00".repeat(32),
            base64sha256: "AA==".into(),
            zipped_bytes: written.zipped_bytes,
            unzipped_bytes: written.unzipped_bytes,
            files: written.files,
        }
    }

    fn package(name: &str, bytes: u64) -> Package {
        Package {
            name: name.into(),
            version: "1.0".into(),
            unzipped_bytes: bytes,
            top_level: vec![name.into()],
            requires: Vec::new(),
            license: None,
        }
    }

    fn image_layer(name: &str, bytes: u64) -> ImageLayerEntry {
        ImageLayerEntry {
            name: name.into(),
            digest: format!("sha256:{}", "11".repeat(32)),
            compressed_bytes: bytes / 2,
            unpacked_bytes: bytes,
        }
    }

    /// The world with `settings` merged into `model`'s table and an image
    /// whose base is `base_bytes` (two layers) and whose own layers are
    /// 1 MiB each, its code 2 MiB.
    fn world(settings: serde_json::Value, base_bytes: u64) -> World {
        let root = tempfile::tempdir().unwrap();
        for dir in ["layers/core", "lambdas/shared", "lambdas/model", "lambdas/sms"] {
            fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        fs::write(root.path().join("layers/core/requirements.txt"), "").unwrap();
        let mut model = json!({
            "source": "lambdas/model",
            "handler": "model_handler.lambda_handler",
            "package": "image",
            "layers": ["core", "extra", "shared", "more"],
        });
        for (key, value) in settings.as_object().unwrap() {
            model[key] = value.clone();
        }
        let requirements = json!({"requirements": "layers/core/requirements.txt"});
        let value = json!({
            "runtime": "python3.11",
            "image_repository": "127.0.0.1:5000/app",
            "layers": {
                "core": requirements,
                "extra": requirements,
                "more": requirements,
                "shared": {"source": "lambdas/shared"},
                "ext": {"arn": "arn:aws:lambda:us-east-1:123456789012:layer:ext:1", "unzipped_size": "250 MiB"},
            },
            "functions": {
                "model": model,
                "sms": {"source": "lambdas/sms", "handler": "sms.lambda_handler", "layers": ["core", "ext"]},
            },
        });
        let config = Config::from_value(root.path(), &value).unwrap();

        let mut manifest = Manifest {
            runtime: "python3.11".into(),
            architecture: "x86_64".into(),
            ..Manifest::default()
        };
        let files = |top: &str| {
            [
                format!("python/{top}/__init__.py"),
                "python/common.py".to_string(),
            ]
        };
        for (name, top) in [("core", "tool"), ("extra", "bigsdk")] {
            let files = files(top);
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            let mut layer = LayerEntry::built(
                LayerKind::Requirements,
                zip(root.path(), name, &files),
                "22".repeat(32),
            );
            layer.packages = vec![package(top, 500_000)];
            manifest.layers.insert(name.into(), layer);
        }
        let more = zip(root.path(), "more", &["python/more/__init__.py"]);
        manifest.layers.insert(
            "more".into(),
            LayerEntry::built(LayerKind::Requirements, more, "22".repeat(32)),
        );
        let shared = zip(root.path(), "shared", &["python/shared/__init__.py"]);
        manifest.layers.insert(
            "shared".into(),
            LayerEntry::built(LayerKind::Source, shared, "22".repeat(32)),
        );
        manifest.layers.insert(
            "ext".into(),
            LayerEntry::external("arn:aws:lambda:us-east-1:123456789012:layer:ext:1", 250 * MIB),
        );
        let code = ZipFacts {
            zip: "dist/functions/f.zip".into(),
            unzipped_bytes: 2 * MIB,
            zipped_bytes: MIB,
            ..ZipFacts::default()
        };
        let sms = FunctionEntry {
            zip: code.clone(),
            handler: "sms.lambda_handler".into(),
            runtime: "python3.11".into(),
            architecture: "x86_64".into(),
            layers: vec!["core".into(), "ext".into()],
            bundled: Vec::new(),
            upload: "direct".into(),
            input_sha256: "33".repeat(32),
            memory_mb: 128,
            timeout_s: 3,
            ephemeral_storage_mb: 512,
            environment: BTreeMap::new(),
            reserved_concurrency: None,
            log_retention_days: 30,
            package_type: PACKAGE_ZIP.into(),
            image: None,
        };
        let layers = vec![
            image_layer("base", base_bytes / 2),
            image_layer("base", base_bytes - base_bytes / 2),
            image_layer("core", MIB),
            image_layer("extra", MIB),
            image_layer("shared", MIB),
            image_layer("more", MIB),
            image_layer("function", 2 * MIB),
        ];
        let model = FunctionEntry {
            layers: Vec::new(),
            handler: "model_handler.lambda_handler".into(),
            package_type: PACKAGE_IMAGE.into(),
            image: Some(ImageEntry {
                base: format!("public.ecr.aws/lambda/python@sha256:{}", "44".repeat(32)),
                digest: format!("sha256:{}", "55".repeat(32)),
                layout: "dist/images/model".into(),
                repository: Some("127.0.0.1:5000/app/model".into()),
                uri: None,
                unpacked_bytes: layers.iter().map(|layer| layer.unpacked_bytes).sum(),
                compressed_bytes: layers.iter().map(|layer| layer.compressed_bytes).sum(),
                layers,
            }),
            ..sms.clone()
        };
        manifest.functions.insert("sms".into(), sms);
        manifest.functions.insert("model".into(), model);
        World {
            root,
            config,
            manifest,
        }
    }

    /// `model` imports `tool` (from `core`), `shared` and `missing`; `sms` nothing.
    fn analysis() -> Analysis {
        let import = |module: &str, line: u32| Import {
            module: module.into(),
            level: 0,
            line,
            guarded: false,
            names: Vec::new(),
        };
        let answer = |imports: Vec<Import>| ModuleAnswer { imports, error: None };
        Analysis {
            modules: BTreeMap::from([
                (
                    "lambdas/model/model_handler.py".to_string(),
                    answer(vec![import("tool", 1), import("shared", 2), import("missing", 3)]),
                ),
                ("lambdas/shared/__init__.py".to_string(), answer(Vec::new())),
                ("lambdas/sms/sms.py".to_string(), answer(Vec::new())),
            ]),
            stdlib: BTreeSet::from(["os".to_string()]),
        }
    }

    fn check(world: &World, function: &str) -> FunctionReport {
        let built = BuiltView::new(&world.manifest, &world.config);
        let limits = Limits {
            config: &world.config,
            built: &built,
            analysis: analysis(),
            listings: Listings::default(),
        };
        assert!(world.root.path().join("dist/layers/core.zip").is_file());
        limits.check_function(&world.config.functions[function]).unwrap()
    }

    #[test]
    fn an_entry_holds_an_images_own_layers_or_the_zips_attached_ones() {
        let world = world(json!({}), 300 * MIB);
        assert_eq!(
            world.manifest.functions["model"].contents(),
            ["core", "extra", "shared", "more"]
        );
        assert_eq!(world.manifest.functions["sms"].contents(), ["core", "ext"]);
    }

    #[test]
    fn an_image_is_measured_whole_against_the_image_limit_and_checked_like_a_zip() {
        let mut world = world(json!({}), 300 * MIB);
        // Six layers of its own: Lambda's five attached layers are no limit for an image.
        for name in ["p1", "p2"] {
            let facts = zip(world.root.path(), name, &[&format!("python/{name}.py")]);
            let layer = LayerEntry::built(LayerKind::Requirements, facts, "22".repeat(32));
            world.manifest.layers.insert(name.into(), layer);
            let image = world.model_image();
            image.layers.insert(image.layers.len() - 1, image_layer(name, 0));
        }
        let report = check(&world, "model");
        let image = report.image.as_ref().expect("image figures");
        assert_eq!(report.limit_bytes, facts::MAX_IMAGE_BYTES);
        assert_eq!(
            report.total_unzipped_bytes,
            306 * MIB,
            "the base's layers included"
        );
        assert_eq!(report.headroom_bytes, (facts::MAX_IMAGE_BYTES - 306 * MIB) as i64);
        assert_eq!(
            (image.base_layers, image.base_bytes, image.shipped_bytes),
            (2, 300 * MIB, 6 * MIB)
        );
        assert_eq!(report.function_unzipped_bytes, 2 * MIB);
        let layers: Vec<(&str, u64)> = report
            .layers
            .iter()
            .map(|layer| (layer.name.as_str(), layer.unzipped_bytes))
            .collect();
        assert_eq!(
            layers,
            [
                ("core", MIB),
                ("extra", MIB),
                ("shared", MIB),
                ("more", MIB),
                ("p1", 0),
                ("p2", 0)
            ]
        );
        // Over Lambda's ZIP limit, over five layers: neither applies to an image.
        assert_eq!(
            report.imports.provided.get("tool").map(String::as_str),
            Some("core")
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|warning| warning.contains("layers `core` and `extra` both ship 1 file(s) (common.py)")),
            "{:?}",
            report.warnings
        );
        assert!(report
            .warnings
            .iter()
            .any(|warning| warning.contains("bigsdk 1.0 in layer `extra` is unused")));
        assert_eq!(
            report.errors,
            ["imports `missing` (model_handler, line 3): no layer provides it and it is neither standard library nor runtime-provided"]
        );
    }

    #[test]
    fn an_image_over_the_image_limit_fails_naming_both_numbers() {
        let world = world(json!({}), facts::MAX_IMAGE_BYTES);
        let report = check(&world, "model");
        assert!(!report.ok);
        assert!(
            report.errors[0].starts_with(&format!(
                "image size {} bytes uncompressed, its base's 10.0 GiB included, exceeds Lambda's limit of 10737418240 bytes for an image by {} bytes",
                facts::MAX_IMAGE_BYTES + 6 * MIB,
                6 * MIB
            )),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn an_images_budget_counts_what_the_team_ships_not_the_base() {
        let within = world(json!({"budget": "10 MiB"}), 5 << 30);
        let report = check(&within, "model");
        assert_eq!(report.budget_headroom_bytes, Some(4 * MIB as i64));
        assert!(
            report.errors.iter().all(|error| !error.contains("budget")),
            "{:?}",
            report.errors
        );
        let over = world(json!({"budget": "5 MiB"}), 5 << 30);
        let report = check(&over, "model");
        assert!(
            report.errors.contains(
                &"the image's own layers (all but the base's 5.0 GiB) are 6.0 MiB, over the budget of 5.0 MiB by 1.0 MiB"
                    .to_string()
            ),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn an_import_a_configured_layer_provides_is_named_as_missing_from_the_image() {
        let mut world = world(json!({"layers": ["extra", "shared", "more"]}), MIB);
        let image = world.model_image();
        image.layers.retain(|layer| layer.name != "core");
        let report = check(&world, "model");
        assert!(
            report.errors.contains(
                &"imports `tool` (model_handler, line 1): layer `core` provides it but is not in `model`'s image (add it to its `layers`)"
                    .to_string()
            ),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn a_zip_over_lambdas_limit_names_the_image_it_could_be() {
        let world = world(json!({}), MIB);
        let report = check(&world, "sms");
        assert!(report.image.is_none());
        assert_eq!(report.limit_bytes, facts::MAX_UNZIPPED_BYTES);
        let error = &report.errors[0];
        assert!(error.starts_with("unzipped size "), "{error}");
        assert!(
            error.contains("exceeds Lambda's limit of 262144000 bytes by"),
            "{error}"
        );
        assert!(
            error.contains(
                "set `package = \"image\"` for `sms` in Cargo.toml: as an image its layers would be 252."
            ),
            "{error}"
        );
        assert!(
            error.contains("MiB on top of the base image (Lambda allows 10.0 GiB for an image, its base included), once what the external layer(s) `ext` hold is built here"),
            "{error}"
        );
    }
}
