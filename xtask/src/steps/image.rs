//! An image function's image (`package = "image"`), in two steps that know
//! nothing of the graph:
//!
//! - [`pull_base`]: the base image for one architecture, fetched by digest
//!   through the registry's API into the folder it is given, every blob
//!   verified; what it holds is read once (the Pythons it has, each layer's
//!   unpacked size) so that an image on it is checked without reading it
//!   again;
//! - [`image`]: on that base, one image layer per layer the function would
//!   attach as a ZIP (its files under `/opt`, as Lambda extracts a layer)
//!   and one for the function's code (under `/var/task`), each made once
//!   per ZIP and kept in the store (`image-layer`), so that a handler edit
//!   writes one small layer; the config (the handler as `CMD`, the base's
//!   entrypoint), the manifest and the layout's `index.json`.
//!
//! `images.lock` pins each base given by tag to a digest, per architecture
//! (written by `cargo xtask lock`): a build never asks a registry what a tag
//! means.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::manifest::IMAGE_BASE_LAYER;
use crate::config::{Config, Package};
use crate::facts::{self, Arch, Runtime};
use crate::ground::digest::KeyHasher;
use crate::ground::error::UsageError;
use crate::store::oci::{self, LayerInfo};
use crate::store::registry::{self, Reference};
use crate::store::{archive, Lookup, Store};

/// The platform manifest of a pulled base, as the registry gave it.
pub const BASE_MANIFEST: &str = "manifest.json";
/// The image manifest, config and `index.json` of a built image (its
/// layers are kept under their digests' hex).
pub const IMAGE_MANIFEST: &str = "manifest.json";

/// The store's folder of image layers made from ZIPs.
const LAYER_KIND: &str = "image-layer";
const LAYER_BLOB: &str = "layer.tar.gz";
/// Bumped when a layer made from the same ZIP would differ.
const LAYER_FORMAT: &str = "1";

/// The folders a base's Python is looked for in: AWS's base images have
/// it in `/var/lang/bin`, distributions in `/usr/bin` or `/usr/local/bin`.
const PYTHON_DIRS: &[&str] = &["var/lang/bin/", "usr/local/bin/", "usr/bin/"];

/// What a pulled base holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseData {
    /// `registry/repository@sha256:…` of the platform manifest.
    pub reference: String,
    /// `sha256:…` of its config.
    pub config: String,
    pub layers: Vec<BaseLayer>,
    /// `3.11`, …: the `pythonX.Y` executables of its `bin` folders.
    pub pythons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseLayer {
    /// The manifest's descriptor, as it is.
    pub descriptor: Value,
    pub digest: String,
    pub size: u64,
    pub unpacked_bytes: u64,
}

/// Pulls `reference` (by digest) for `arch` into `dir`: the platform
/// manifest as [`BASE_MANIFEST`], every blob under its digest's hex.
pub fn pull_base(reference: &Reference, arch: Arch, dir: &Path) -> Result<BaseData> {
    registry::pull(reference, arch, dir)?;
    let manifest_bytes = fs::read(dir.join(BASE_MANIFEST)).context("reading the pulled base's manifest")?;
    let manifest: Value =
        serde_json::from_slice(&manifest_bytes).context("the base's manifest is not JSON")?;
    let config = manifest["config"]["digest"]
        .as_str()
        .context("the base's manifest names no config")?
        .to_string();
    let mut layers = Vec::new();
    let mut pythons = Vec::new();
    for descriptor in manifest["layers"]
        .as_array()
        .context("the base's manifest has no layers")?
    {
        let digest = descriptor["digest"]
            .as_str()
            .context("a base layer without a digest")?;
        let media_type = descriptor["mediaType"].as_str().unwrap_or("");
        if !media_type.ends_with("gzip") {
            bail!(
                "the base {reference} has a layer of type `{media_type}`; only gzip'd tar layers are read (choose a base built with gzip layers)"
            );
        }
        let path = dir.join(oci::blob_name(digest));
        let unpacked_bytes = read_base_layer(&path, &mut pythons)
            .with_context(|| format!("reading the base's layer {digest}"))?;
        layers.push(BaseLayer {
            descriptor: descriptor.clone(),
            digest: digest.to_string(),
            size: descriptor["size"].as_u64().unwrap_or(0),
            unpacked_bytes,
        });
    }
    pythons.sort();
    pythons.dedup();
    Ok(BaseData {
        reference: reference.at_digest(&oci::digest_of(&manifest_bytes)).to_string(),
        config,
        layers,
        pythons,
    })
}

/// The bytes of a base layer's files, and the Pythons among them.
fn read_base_layer(path: &Path, pythons: &mut Vec<String>) -> Result<u64> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    let mut bytes = 0;
    for entry in archive.entries()? {
        let entry = entry?;
        let header = entry.header();
        bytes += header.size().unwrap_or(0);
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./");
        for dir in PYTHON_DIRS {
            let Some(name) = path.strip_prefix(dir) else {
                continue;
            };
            let Some(version) = name.strip_prefix("python") else {
                continue;
            };
            let numeric = version.split('.').count() == 2
                && version
                    .split('.')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
            if numeric {
                pythons.push(version.to_string());
            }
        }
    }
    Ok(bytes)
}

/// One layer of an image made from a ZIP: the function's (under
/// `var/task/`) or a layer's (under `opt/`).
pub struct Part {
    /// `function`, or the layer's name in the manifest.
    pub name: String,
    pub zip: PathBuf,
    /// Its ZIP's sha256: with where it goes, the cached layer's key.
    pub zip_sha256: String,
    /// Where Lambda puts the ZIP's files: [`facts::TASK_ROOT`] for the
    /// function's, [`facts::LAYER_MOUNT`] for a layer's.
    pub root: &'static str,
}

/// What an image is built from, beyond its parts.
pub struct ImageInputs<'a> {
    pub function: &'a str,
    pub handler: &'a str,
    pub runtime: Runtime,
    pub arch: Arch,
    pub base: &'a BaseData,
    /// The base's store entry: its blobs.
    pub base_dir: &'a Path,
}

/// A built image's data in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageData {
    /// The base, by digest.
    pub base: String,
    /// `sha256:…` of the image manifest.
    pub digest: String,
    /// Bottom to top, the base's layers (`base`) included.
    pub layers: Vec<ImageLayer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    pub name: String,
    pub digest: String,
    pub compressed_bytes: u64,
    pub unpacked_bytes: u64,
}

/// Builds the image of `inputs` from `parts` (bottom to top) into `dir`:
/// each of its own layers' blobs, the config and the manifest under their
/// digests' hex, `index.json` and `oci-layout`. The base's blobs stay in
/// the base's entry.
pub fn image(store: &Store, inputs: &ImageInputs, parts: &[Part], dir: &Path) -> Result<ImageData> {
    let version = inputs.runtime.python_version();
    if !inputs.base.pythons.contains(&version) {
        let found = if inputs.base.pythons.is_empty() {
            "none".to_string()
        } else {
            inputs.base.pythons.join(", ")
        };
        return Err(UsageError::new(format!(
            "functions.{}.image_base: {} has no Python {version} (found: {found}, in /var/lang/bin, /usr/local/bin or /usr/bin); choose a base for {}, such as {}",
            inputs.function,
            inputs.base.reference,
            inputs.runtime.name,
            facts::default_image_base(inputs.runtime)
        ))
        .into());
    }
    let base_config: Value = serde_json::from_slice(
        &fs::read(inputs.base_dir.join(oci::blob_name(&inputs.base.config)))
            .context("reading the base's config")?,
    )
    .context("the base's config is not JSON")?;
    let architecture = base_config["architecture"].as_str().unwrap_or("");
    if architecture != inputs.arch.oci_name() || base_config["os"] != "linux" {
        return Err(UsageError::new(format!(
            "functions.{}.image_base: {} is an image for {}/{architecture}, and the function runs on linux/{} ({}); choose a base for its architecture",
            inputs.function,
            inputs.base.reference,
            base_config["os"].as_str().unwrap_or("?"),
            inputs.arch.oci_name(),
            inputs.arch.name(),
        ))
        .into());
    }
    let made: Vec<(LayerInfo, PathBuf)> = parts
        .par_iter()
        .map(|part| cached_layer(store, part))
        .collect::<Result<_>>()?;
    for (info, path) in &made {
        link_or_copy(path, &dir.join(oci::blob_name(&info.digest)))?;
    }
    let infos: Vec<LayerInfo> = made.iter().map(|(info, _)| info.clone()).collect();
    let run = oci::Run {
        cmd: vec![inputs.handler.to_string()],
        env: Vec::new(),
    };
    let config = oci::config(&base_config, &infos, &run)?;
    let base_descriptors: Vec<Value> = inputs
        .base
        .layers
        .iter()
        .map(|layer| layer.descriptor.clone())
        .collect();
    let manifest = oci::manifest(&config, &base_descriptors, &infos)?;
    let digest = oci::digest_of(&manifest);
    for blob in [&config, &manifest] {
        fs::write(dir.join(oci::blob_name(&oci::digest_of(blob))), blob)?;
    }
    fs::write(dir.join(IMAGE_MANIFEST), &manifest)?;
    fs::write(dir.join(oci::LAYOUT_MARKER), oci::LAYOUT_VERSION)?;
    let name = format!("lambda/{}:latest", inputs.function);
    fs::write(dir.join(oci::LAYOUT_INDEX), oci::index(&manifest, &name)?)?;
    let mut layers: Vec<ImageLayer> = inputs
        .base
        .layers
        .iter()
        .map(|layer| ImageLayer {
            name: IMAGE_BASE_LAYER.to_string(),
            digest: layer.digest.clone(),
            compressed_bytes: layer.size,
            unpacked_bytes: layer.unpacked_bytes,
        })
        .collect();
    layers.extend(parts.iter().zip(&infos).map(|(part, info)| ImageLayer {
        name: part.name.clone(),
        digest: info.digest.clone(),
        compressed_bytes: info.size,
        unpacked_bytes: info.unpacked_bytes,
    }));
    Ok(ImageData {
        base: inputs.base.reference.clone(),
        digest,
        layers,
    })
}

/// The image layers being made or looked up in this run, by key: images
/// that share a layer (two functions attaching one profile) are made on
/// several threads at once, and the store replaces an entry put twice, so
/// one thread makes a layer while the others wait and then find it made.
/// Held over no parallel work (no thread waits on a job that waits here).
static LAYER_GATES: Mutex<BTreeMap<String, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());

/// The image layer of one ZIP, from the store when it was made before.
fn cached_layer(store: &Store, part: &Part) -> Result<(LayerInfo, PathBuf)> {
    let mut key = KeyHasher::default();
    key.part("format", LAYER_FORMAT)
        .part("zip", &part.zip_sha256)
        .part("prefix", facts::in_image_layer(part.root));
    let key = key.hex();
    let gate = Arc::clone(
        LAYER_GATES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default(),
    );
    let _only_maker = gate.lock().unwrap_or_else(PoisonError::into_inner);
    if let Lookup::Hit(entry) = store.lookup(LAYER_KIND, &key) {
        if let (Ok(info), Some(_)) = (
            serde_json::from_value::<LayerInfo>(entry.data.clone()),
            entry.file(LAYER_BLOB),
        ) {
            return Ok((info, entry.dir.join(LAYER_BLOB)));
        }
    }
    let entry = store.put(LAYER_KIND, &key, |dir| {
        let prefix = facts::in_image_layer(part.root);
        let files = archive::read_entries_up_to(
            &part.zip,
            facts::MAX_IMAGE_BYTES,
            "Lambda's limit for a container image",
        )?
        .into_iter()
        .map(|(path, bytes, executable)| oci::File {
            path: format!("{prefix}{path}"),
            bytes,
            executable,
        })
        .collect();
        let layer =
            oci::layer(files).with_context(|| format!("making the image layer of `{}`", part.name))?;
        fs::write(dir.join(LAYER_BLOB), &layer.blob)?;
        Ok(serde_json::to_value(&layer.info)?)
    })?;
    let info: LayerInfo = serde_json::from_value(entry.data.clone())?;
    Ok((info, entry.dir.join(LAYER_BLOB)))
}

/// A hard link where the file system allows one (a layer's blob is
/// written once and never changed), else a copy.
pub fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// The images `push` has put into a repository, `<repository>@<digest>`
/// each, kept with the cache: the manifest names an image function's `uri`
/// only for an image pushed there. A push that failed records nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Pushes(std::collections::BTreeSet<String>);

const PUSHES_FILE: &str = "pushed.json";

impl Pushes {
    pub fn read(cache_dir: &Path) -> Pushes {
        fs::read(cache_dir.join(PUSHES_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn contains(&self, uri: &str) -> bool {
        self.0.contains(uri)
    }

    /// Records `uri` as pushed (under the run lock: one writer).
    pub fn record(cache_dir: &Path, uri: &str) -> Result<()> {
        let mut pushes = Pushes::read(cache_dir);
        if pushes.0.insert(uri.to_string()) {
            crate::ground::atomic::write_atomic(
                &cache_dir.join(PUSHES_FILE),
                &serde_json::to_vec_pretty(&pushes)?,
            )?;
        }
        Ok(())
    }
}

/// `images.lock`: each base given by tag, pinned by digest per
/// architecture.
pub const LOCK_FILE: &str = "images.lock";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseLock {
    /// What wrote it, for people.
    #[serde(default)]
    pub note: String,
    /// Reference as configured → architecture → `sha256:…`.
    pub bases: BTreeMap<String, BTreeMap<String, String>>,
}

const LOCK_NOTE: &str =
    "Written by `cargo xtask lock`: each image base given by tag, pinned by digest for each architecture. Commit it; `cargo xtask lock --upgrade` moves the pins.";

impl BaseLock {
    /// The lock in `root`, empty when there is none; a damaged one is a
    /// configuration error.
    pub fn read(root: &Path) -> Result<BaseLock> {
        let path = root.join(LOCK_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                UsageError::new(format!(
                    "{LOCK_FILE}: not a lock this tool wrote ({err}); delete it and run `cargo xtask lock`"
                ))
                .into()
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BaseLock::default()),
            Err(err) => Err(anyhow::Error::new(err).context(format!("reading {}", path.display()))),
        }
    }

    pub fn write(&self, root: &Path) -> Result<()> {
        let mut lock = self.clone();
        lock.note = LOCK_NOTE.to_string();
        let mut text = serde_json::to_string_pretty(&lock)?;
        text.push('\n');
        crate::ground::atomic::write_atomic(&root.join(LOCK_FILE), text.as_bytes())
    }

    /// `base` by digest for `arch`: as configured when it has a digest,
    /// else as pinned here. `key` names the setting in the error.
    pub fn pin(&self, base: &Reference, arch: Arch, key: &str) -> Result<Reference, UsageError> {
        if base.digest.is_some() {
            return Ok(base.clone());
        }
        match self.bases.get(&base.to_string()).and_then(|pins| pins.get(arch.name())) {
            Some(digest) => Ok(base.at_digest(digest)),
            None => Err(UsageError::new(format!(
                "{key}: `{base}` is a tag, and an image is built only on a base pinned by digest: run `cargo xtask lock` (it writes {LOCK_FILE}), or write `{}@sha256:…`",
                base.to_string().rsplit_once(':').map_or(base.to_string(), |(name, _)| name.to_string())
            ))),
        }
    }
}

/// Every base an image function is built on, given by tag, with the
/// architectures it is needed for: what `images.lock` pins.
pub fn tagged_bases(config: &Config) -> BTreeMap<Reference, Vec<Arch>> {
    let mut bases: BTreeMap<Reference, Vec<Arch>> = BTreeMap::new();
    for function in config.functions.values() {
        if let Package::Image(spec) = &function.package {
            if spec.base.digest.is_none() {
                let arch = config.platform_of(function).arch;
                let arches = bases.entry(spec.base.clone()).or_default();
                if !arches.contains(&arch) {
                    arches.push(arch);
                }
            }
        }
    }
    bases
}

impl BaseLock {
    /// What is not pinned yet, as `base (architecture)` each.
    pub fn unpinned(&self, config: &Config) -> Vec<String> {
        let mut missing = Vec::new();
        for (base, arches) in tagged_bases(config) {
            for arch in arches {
                if self
                    .bases
                    .get(&base.to_string())
                    .and_then(|pins| pins.get(arch.name()))
                    .is_none()
                {
                    missing.push(format!("{base} ({})", arch.name()));
                }
            }
        }
        missing
    }

    /// Pins every tagged base of `config` (again, with `upgrade`) by asking
    /// its registry, and forgets the bases no function uses: the lines to
    /// print, one per pin.
    pub fn pin_all(&mut self, config: &Config, upgrade: bool) -> Result<Vec<String>> {
        let wanted = tagged_bases(config);
        let mut lines = Vec::new();
        let mut next: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (base, arches) in &wanted {
            let mut client = None;
            for arch in arches {
                let known = self
                    .bases
                    .get(&base.to_string())
                    .and_then(|pins| pins.get(arch.name()));
                let digest = match (known, upgrade) {
                    (Some(digest), false) => digest.clone(),
                    _ => {
                        let client = match &mut client {
                            Some(client) => client,
                            None => client.insert(registry::Client::new(base, false)?),
                        };
                        let resolved = client
                            .platform_manifest(base, *arch)
                            .with_context(|| format!("pinning the image base {base} for {}", arch.name()))?;
                        lines.push(format!("{base} ({}) → {}", arch.name(), resolved.digest));
                        resolved.digest
                    }
                };
                next.entry(base.to_string())
                    .or_default()
                    .insert(arch.name().to_string(), digest);
            }
        }
        self.bases = next;
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::archive::{self, Content, Entry};

    /// Two images that share a layer (two functions attaching the same
    /// profile) make it at once, each on its own thread: each must be
    /// handed a layer whose blob is there to link, whichever made it.
    #[test]
    fn images_sharing_a_layer_make_it_at_the_same_time() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let zip = dir.path().join("layer.zip");
            let files = (0..50)
                .map(|index| Entry {
                    path: format!("python/module_{index}.py"),
                    content: Content::Bytes(format!("X = {index}\n{}", "#".repeat(4000)).into_bytes()),
                    executable: false,
                })
                .collect();
            archive::write_zip(&zip, files).unwrap();
            let zip_sha256 = crate::ground::digest::file_sha256(&zip).unwrap().hex;
            let store = Store::new(&dir.path().join("cache"));
            let made: Vec<Result<(LayerInfo, Vec<u8>)>> = (0..8)
                .into_par_iter()
                .map(|_| {
                    let part = Part {
                        name: "core".to_string(),
                        zip: zip.clone(),
                        zip_sha256: zip_sha256.clone(),
                        root: facts::LAYER_MOUNT,
                    };
                    let (info, path) = cached_layer(&store, &part)?;
                    let blob = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                    Ok((info, blob))
                })
                .collect();
            let made: Vec<(LayerInfo, Vec<u8>)> = made
                .into_iter()
                .collect::<Result<_>>()
                .unwrap_or_else(|err| panic!("round {round}: {err:#}"));
            assert!(made.windows(2).all(|pair| pair[0] == pair[1]), "one layer");
        }
    }
}
