//! `dist/` as a pure function of the graph: each product that is up to
//! date copied from the store (only when its bytes differ, so unchanged
//! files keep their mtimes), everything else removed, and
//! `dist/manifest.json` written whole from the configuration and the nodes'
//! outputs — only when every product is built, so that it never describes
//! something that is not there.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Graph, Kind, Status};
use crate::config::manifest::{
    ApiEntry, FunctionEntry, ImageEntry, ImageLayerEntry, LayerEntry, LayerKind, Manifest, Upload, ZipFacts,
    PACKAGE_IMAGE,
};
use crate::config::{Config, Function, ImageSpec, LayerSource, Package, Platform};
use crate::ground::atomic::{temp_sibling, write_atomic};
use crate::ground::digest::file_sha256;
use crate::steps::image::{self, link_or_copy, BaseData, ImageData};
use crate::steps::install::ZipData;
use crate::store::oci;
use crate::store::{stamp, Entry};

/// Where a product lands in `dist/`, relative to the repository root.
pub fn dist_path(kind: Kind, name: &str) -> Option<String> {
    match kind {
        Kind::Profile | Kind::SourceLayer => Some(format!("dist/layers/{name}.zip")),
        Kind::Function => Some(format!("dist/functions/{name}.zip")),
        Kind::Sbom => Some(format!("dist/sbom/{name}.cdx.json")),
        Kind::Base | Kind::Image | Kind::Check | Kind::Smoke => None,
    }
}

/// Where an SBOM's SPDX twin lands, beside its CycloneDX document.
pub fn spdx_path(name: &str) -> String {
    format!("dist/sbom/{name}.spdx.json")
}

/// Where an image function's OCI image layout lands.
pub fn image_dir(function: &str) -> String {
    format!("dist/images/{function}")
}

/// The files of an image's layout in `dist/`: its own blobs, config,
/// manifest, `index.json` and `oci-layout` from its entry, and its base's
/// layers from the base's entry; each as (path in `dist/`, file, sha256).
fn image_files(graph: &Graph, index: usize, statuses: &[Option<Status>]) -> Vec<(String, PathBuf, String)> {
    let node = &graph.nodes[index];
    let dir = image_dir(&node.name);
    let mut files = Vec::new();
    let Some(entry) = statuses[index].as_ref().and_then(Status::entry) else {
        return files;
    };
    let blob = |name: &str| format!("{dir}/{}/{name}", oci::LAYOUT_BLOBS);
    for file in &entry.files {
        let relative = if file.name == oci::LAYOUT_MARKER || file.name == oci::LAYOUT_INDEX {
            format!("{dir}/{}", file.name)
        } else if crate::ground::digest::is_sha256_hex(&file.name) {
            blob(&file.name)
        } else {
            continue;
        };
        files.push((relative, entry.dir.join(&file.name), file.sha256.clone()));
    }
    for &dep in &node.deps {
        if graph.nodes[dep].kind != Kind::Base {
            continue;
        }
        let Some(base) = statuses[dep].as_ref().and_then(Status::entry) else {
            continue;
        };
        let Ok(data) = serde_json::from_value::<BaseData>(base.data.clone()) else {
            continue;
        };
        for layer in &data.layers {
            let name = oci::blob_name(&layer.digest);
            if let Some(file) = base.file(name) {
                files.push((blob(name), base.dir.join(name), file.sha256.clone()));
            }
        }
    }
    files
}

/// The manifest of what is built: every configured layer and function
/// whose product is up to date, and the products it lacks (none: it is
/// complete).
pub fn manifest(
    config: &Config,
    graph: &Graph,
    statuses: &[Option<Status>],
) -> Result<(Manifest, Vec<String>)> {
    let mut manifest = Manifest {
        runtime: config.runtime.name.to_string(),
        architecture: config.arch.name().to_string(),
        log_retention_days: config.log_retention_days,
        // From the configuration alone, like the settings: the manifest is
        // written whole on every run, so a changed route is never stale.
        api: ApiEntry::new(&config.api),
        ..Manifest::default()
    };
    let mut missing = Vec::new();
    let built = |kind: Kind, name: &str| -> Option<(String, &Entry)> {
        let index = graph.find(kind, name)?;
        let status = statuses[index].as_ref()?;
        Some((status.key()?.to_string(), status.entry()?))
    };
    for layer in config.layers.values() {
        let (kind, variants) = match &layer.source {
            LayerSource::External { arn, unzipped_bytes } => {
                let entry = LayerEntry::external(arn, *unzipped_bytes);
                manifest.layers.insert(layer.name.clone(), entry);
                continue;
            }
            // One build of a dependency profile per platform, one ZIP of
            // source code for every platform.
            LayerSource::Requirements(_) => (
                Kind::Profile,
                config
                    .layer_platforms(&layer.name)
                    .into_iter()
                    .map(|platform| (config.variant(&layer.name, platform), vec![platform]))
                    .collect(),
            ),
            LayerSource::Source(_) => (
                Kind::SourceLayer,
                vec![(layer.name.clone(), config.layer_platforms(&layer.name))],
            ),
        };
        for (name, platforms) in variants {
            match built(kind, &name) {
                Some((key, entry)) => {
                    let layer_entry = layer_entry(kind, &name, key, entry, &platforms)?;
                    manifest.layers.insert(name, layer_entry);
                }
                None => missing.push(format!("layer {name}")),
            }
        }
    }
    let pushed = image::Pushes::read(&config.cache_dir());
    for function in config.functions.values() {
        let image = match &function.package {
            Package::Zip => None,
            Package::Image(spec) => match built(Kind::Image, &function.name) {
                Some((_, entry)) => Some(image_entry(function, spec, entry, &pushed)?),
                None => {
                    missing.push(format!("image {}", function.name));
                    continue;
                }
            },
        };
        match built(Kind::Function, &function.name) {
            Some((key, entry)) => {
                let mut function_entry = function_entry(config, function, key, entry)?;
                if let Some(image) = image {
                    function_entry.package_type = PACKAGE_IMAGE.to_string();
                    function_entry.layers = Vec::new();
                    function_entry.image = Some(image);
                }
                manifest.functions.insert(function.name.clone(), function_entry);
            }
            None => missing.push(format!("function {}", function.name)),
        }
    }
    Ok((manifest, missing))
}

/// An image function's image as the manifest describes it; its `uri`
/// only once `push` has put this very digest into its repository.
fn image_entry(
    function: &Function,
    spec: &ImageSpec,
    entry: &Entry,
    pushed: &image::Pushes,
) -> Result<ImageEntry> {
    let data: ImageData = serde_json::from_value(entry.data.clone())
        .with_context(|| format!("reading the cache entry {}", entry.dir.display()))?;
    let repository = spec.repository.as_ref().map(|repository| repository.to_string());
    let uri = repository
        .as_ref()
        .map(|repository| format!("{repository}@{}", data.digest))
        .filter(|uri| pushed.contains(uri));
    Ok(ImageEntry {
        base: data.base,
        layout: image_dir(&function.name),
        repository,
        uri,
        unpacked_bytes: data.layers.iter().map(|layer| layer.unpacked_bytes).sum(),
        compressed_bytes: data.layers.iter().map(|layer| layer.compressed_bytes).sum(),
        layers: data
            .layers
            .into_iter()
            .map(|layer| ImageLayerEntry {
                name: layer.name,
                digest: layer.digest,
                compressed_bytes: layer.compressed_bytes,
                unpacked_bytes: layer.unpacked_bytes,
            })
            .collect(),
        digest: data.digest,
    })
}

/// The manifest's entry of a built layer (`kind`: a profile or a source
/// layer) made for `platforms`.
fn layer_entry(
    kind: Kind,
    name: &str,
    key: String,
    entry: &Entry,
    platforms: &[Platform],
) -> Result<LayerEntry> {
    let (zip, data) = zip_facts(kind, name, entry)?;
    let layer_kind = if kind == Kind::Profile {
        LayerKind::Requirements
    } else {
        LayerKind::Source
    };
    let mut layer_entry = LayerEntry::built(layer_kind, zip, key.clone());
    if let Some(inventory) = data.inventory {
        layer_entry.packages = inventory.packages;
        layer_entry.excluded = Some(inventory.excluded);
        layer_entry.builder = data.builder;
        layer_entry.installer = data.installer;
        layer_entry.bytecode = Some(
            data.finish
                .as_ref()
                .map_or("none", |f| f.bytecode.as_str())
                .to_string(),
        );
        layer_entry.slim = Some(data.finish.as_ref().is_some_and(|f| f.slim));
        layer_entry.cache_key = Some(key);
    }
    let mut runtimes: Vec<String> = platforms.iter().map(|p| p.runtime.name.to_string()).collect();
    let mut architectures: Vec<String> = platforms.iter().map(|p| p.arch.name().to_string()).collect();
    runtimes.sort();
    runtimes.dedup();
    architectures.sort();
    architectures.dedup();
    layer_entry.runtimes = runtimes;
    layer_entry.architectures = architectures;
    Ok(layer_entry)
}

/// The manifest's entry of a built function: its ZIP, how it is deployed,
/// and its layers, attached or bundled.
fn function_entry(config: &Config, function: &Function, key: String, entry: &Entry) -> Result<FunctionEntry> {
    let (zip, _) = zip_facts(Kind::Function, &function.name, entry)?;
    let upload = Upload::for_zip(zip.zipped_bytes);
    let attached: Vec<String> = function
        .layers
        .iter()
        .map(|name| config.attached(function, name))
        .collect();
    let (layers, bundled) = if function.bundle {
        (Vec::new(), attached)
    } else {
        (attached, Vec::new())
    };
    let platform = config.platform_of(function);
    Ok(FunctionEntry {
        zip,
        handler: function.handler.clone(),
        runtime: platform.runtime.name.to_string(),
        architecture: platform.arch.name().to_string(),
        layers,
        bundled,
        upload: upload.name().to_string(),
        input_sha256: key,
        memory_mb: function.deploy.memory_mb,
        timeout_s: function.deploy.timeout_s,
        ephemeral_storage_mb: function.deploy.ephemeral_storage_mb,
        environment: function.deploy.environment.clone(),
        reserved_concurrency: function.deploy.reserved_concurrency,
        log_retention_days: function.deploy.log_retention_days,
        package_type: crate::config::manifest::PACKAGE_ZIP.to_string(),
        image: None,
    })
}

fn zip_facts(kind: Kind, name: &str, entry: &Entry) -> Result<(ZipFacts, ZipData)> {
    let file = entry
        .file(kind.product_file())
        .with_context(|| format!("the cache entry {} has no ZIP", entry.dir.display()))?;
    let data: ZipData = serde_json::from_value(entry.data.clone())
        .with_context(|| format!("reading the cache entry {}", entry.dir.display()))?;
    let zip = ZipFacts {
        zip: dist_path(kind, name).expect("a product"),
        sha256: file.sha256.clone(),
        base64sha256: file.base64sha256.clone(),
        zipped_bytes: file.bytes,
        unzipped_bytes: data.written.unzipped_bytes,
        files: data.written.files,
    };
    Ok((zip, data))
}

/// What materialising changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

/// Stamps of the files this tool put in `dist/`: an unchanged stamp means
/// unchanged bytes, so a no-op run hashes nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stamps(BTreeMap<String, (String, String)>);

/// Makes `dist/` what the graph says: the products that are up to date,
/// and the manifest when all of them are.
pub fn materialise(
    config: &Config,
    graph: &Graph,
    statuses: &[Option<Status>],
    manifest: &Manifest,
    complete: bool,
) -> Result<Changes> {
    let stamps_path = config.cache_dir().join("dist-stamps.json");
    let mut stamps: Stamps = fs::read(&stamps_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let before = serde_json::to_vec(&stamps)?;
    let mut changes = Changes::default();
    let mut wanted: BTreeMap<String, (PathBuf, String)> = BTreeMap::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        if node.kind == Kind::Image {
            for (relative, source, sha256) in image_files(graph, index, statuses) {
                wanted.insert(relative, (source, sha256));
            }
            continue;
        }
        let Some(relative) = dist_path(node.kind, &node.name) else {
            continue;
        };
        if let Some(entry) = statuses[index].as_ref().and_then(Status::entry) {
            if let Some(file) = entry.file(node.kind.product_file()) {
                wanted.insert(relative, (entry.dir.join(&file.name), file.sha256.clone()));
            }
            if let (Kind::Sbom, Some(file)) = (node.kind, entry.file(crate::steps::sbom::SPDX)) {
                wanted.insert(
                    spdx_path(&node.name),
                    (entry.dir.join(&file.name), file.sha256.clone()),
                );
            }
        }
    }

    for (relative, (source, sha256)) in &wanted {
        let dest = config.root.join(relative);
        let current = fs::metadata(&dest).ok().map(|metadata| stamp(&metadata));
        let known = stamps.0.get(relative);
        let same = match (&current, known) {
            (Some(current), Some((stamped, hash))) if current == stamped && hash == sha256 => true,
            (Some(_), _) => file_sha256(&dest).is_ok_and(|digest| &digest.hex == sha256),
            (None, _) => false,
        };
        if !same {
            if relative.starts_with("dist/images/") {
                // Blobs are never changed in place: a link costs nothing,
                // where a base's layers would be copied for every image.
                link_atomic(source, &dest)?;
            } else {
                copy_atomic(source, &dest)?;
            }
            changes.written.push(relative.clone());
        }
        let stamped = stamp(&fs::metadata(&dest)?);
        stamps.0.insert(relative.clone(), (stamped, sha256.clone()));
    }
    stamps.0.retain(|relative, _| wanted.contains_key(relative));

    let manifest_path = config.manifest_path();
    if complete && write_manifest(config, manifest)? {
        changes.written.push("dist/manifest.json".to_string());
    }
    let mut keep: std::collections::HashSet<PathBuf> =
        wanted.keys().map(|relative| config.root.join(relative)).collect();
    if complete {
        // The report describes the manifest: it is written after the
        // checks (by the command's run), and goes when the manifest does.
        keep.insert(manifest_path);
        keep.insert(config.report_path());
        // Written by `audit` alone; the report shows it only while it
        // describes what ships.
        keep.insert(config.audit_path());
    }
    remove_others(&config.root, &config.dist_dir(), &keep, &mut changes.removed)?;

    if serde_json::to_vec(&stamps)? != before {
        write_atomic(&stamps_path, &serde_json::to_vec(&stamps)?)?;
    }
    Ok(changes)
}

/// Writes `dist/manifest.json` whole, when its bytes differ: whether it did.
pub fn write_manifest(config: &Config, manifest: &Manifest) -> Result<bool> {
    let mut text = serde_json::to_string_pretty(manifest)?;
    text.push('\n');
    let path = config.manifest_path();
    if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    write_atomic(&path, text.as_bytes())?;
    Ok(true)
}

/// The files in `dist/` that no node of the graph produces: what a run
/// would remove. Reads only.
pub fn strays(config: &Config, graph: &Graph) -> Vec<String> {
    let mut produced: std::collections::HashSet<PathBuf> = graph
        .nodes
        .iter()
        .flat_map(|node| {
            let spdx = (node.kind == Kind::Sbom).then(|| spdx_path(&node.name));
            dist_path(node.kind, &node.name).into_iter().chain(spdx)
        })
        .map(|relative| config.root.join(relative))
        .collect();
    produced.insert(config.manifest_path());
    produced.insert(config.report_path());
    // Written by `audit`, not by the graph; the report tells whether it
    // still describes what ships.
    produced.insert(config.audit_path());
    // An image's blobs are named by what the run makes: its folder is its own.
    let image_dirs: Vec<PathBuf> = graph
        .nodes
        .iter()
        .filter(|node| node.kind == Kind::Image)
        .map(|node| config.root.join(image_dir(&node.name)))
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![config.dist_dir()];
    while let Some(dir) = stack.pop() {
        let Ok(items) = fs::read_dir(&dir) else { continue };
        for item in items.flatten() {
            let path = item.path();
            if path.is_dir() {
                stack.push(path);
            } else if !produced.contains(&path) && !image_dirs.iter().any(|dir| path.starts_with(dir)) {
                let relative = path.strip_prefix(&config.root).unwrap_or(&path);
                found.push(relative.display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Clears `dist/` (a configuration that cannot be planned produces
/// nothing; the old artifacts no longer describe it).
pub fn clear(dist: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let root = dist.parent().unwrap_or(dist);
    remove_others(root, dist, &Default::default(), &mut removed)?;
    Ok(removed)
}

fn link_atomic(source: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temp = temp_sibling(dest);
    let result = link_or_copy(source, &temp)
        .and_then(|_| fs::rename(&temp, dest).with_context(|| format!("writing {}", dest.display())));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn copy_atomic(source: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temp = temp_sibling(dest);
    let result = fs::copy(source, &temp)
        .with_context(|| format!("copying {} to {}", source.display(), temp.display()))
        .and_then(|_| fs::rename(&temp, dest).with_context(|| format!("writing {}", dest.display())));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes every file under `dir` that is not in `keep`, and the folders
/// left empty.
fn remove_others(
    root: &Path,
    dir: &Path,
    keep: &std::collections::HashSet<PathBuf>,
    removed: &mut Vec<String>,
) -> Result<()> {
    let Ok(items) = fs::read_dir(dir) else {
        return Ok(());
    };
    for item in items {
        let item = item?;
        let path = item.path();
        if item.file_type()?.is_dir() {
            remove_others(root, &path, keep, removed)?;
            if fs::read_dir(&path).is_ok_and(|mut items| items.next().is_none()) {
                fs::remove_dir(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        } else if !keep.contains(&path) {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            let relative = path.strip_prefix(root).unwrap_or(&path);
            // Leftovers of an interrupted write are not worth a line.
            if !relative.to_string_lossy().contains(".tmp-") {
                removed.push(relative.display().to_string());
            }
        }
    }
    Ok(())
}
