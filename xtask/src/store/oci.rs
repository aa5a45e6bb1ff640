//! The one writer of container image parts (issue 25, `package = "image"`),
//! deterministic by construction as the ZIP writer is: a layer is a tar of
//! entries sorted by path, every parent directory present, timestamps 0,
//! owner and group 0 with no names, 0644 files, 0755 directories and
//! executables, gzip-compressed with no name and no time in its header; the
//! image's config and manifest are JSON with sorted keys; the OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/…`) holds them. The
//! same inputs give the same digests on any machine, and a layer whose files
//! did not change keeps its digest.
//!
//! Media types and layout: the OCI image specification v1.0
//! (image-layout.md, manifest.md, config.md, layer.md),
//! https://github.com/opencontainers/image-spec

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context, Result};
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ground::digest::bytes_sha256;

pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const FILE_MODE: u32 = 0o644;
const EXECUTABLE_MODE: u32 = 0o755;
const DIRECTORY_MODE: u32 = 0o755;

/// One file of a layer: its path in the image's file system (no leading
/// `/`), its bytes, whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub bytes: Vec<u8>,
    pub executable: bool,
}

/// A written layer: the compressed blob and what names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The gzip-compressed tar, as it is stored and pushed.
    pub blob: Vec<u8>,
    pub info: LayerInfo,
}

/// What names a layer, without its bytes: what the config and the
/// manifest need, and what a cached layer records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// `sha256:<hex>` of the compressed blob: the manifest's name for it.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar: the config's `diff_ids`.
    pub diff_id: String,
    /// The compressed blob's size.
    pub size: u64,
    /// Bytes of the files, uncompressed (what Lambda's 10 GB limit counts).
    pub unpacked_bytes: u64,
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", bytes_sha256(bytes))
}

/// The layer holding `files`; two files at one path are an error.
pub fn layer(files: Vec<File>) -> Result<Layer> {
    let mut by_path: BTreeMap<String, File> = BTreeMap::new();
    for file in files {
        check_path(&file.path)?;
        if by_path.contains_key(&file.path) {
            bail!("two files would be stored as `{}` in one image layer", file.path);
        }
        by_path.insert(file.path.clone(), file);
    }
    let mut directories: BTreeMap<String, ()> = BTreeMap::new();
    for path in by_path.keys() {
        let mut parent = path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            directories.insert(format!("{up}/"), ());
            parent = up;
        }
    }
    // Directories and files in one order: a directory before what it holds.
    let mut order: Vec<(String, Option<&File>)> = directories.into_keys().map(|dir| (dir, None)).collect();
    order.extend(by_path.iter().map(|(path, file)| (path.clone(), Some(file))));
    order.sort_by(|a, b| a.0.trim_end_matches('/').cmp(b.0.trim_end_matches('/')));
    let mut tar = tar::Builder::new(Vec::new());
    let mut unpacked_bytes = 0;
    for (path, file) in order {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(DIRECTORY_MODE);
                header.set_size(0);
                tar.append_data(&mut header, &path, std::io::empty())
            }
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if file.executable {
                    EXECUTABLE_MODE
                } else {
                    FILE_MODE
                });
                header.set_size(file.bytes.len() as u64);
                unpacked_bytes += file.bytes.len() as u64;
                tar.append_data(&mut header, &path, file.bytes.as_slice())
            }
        }
        .with_context(|| format!("adding `{path}` to an image layer"))?;
    }
    let tar = tar.into_inner().context("finishing an image layer")?;
    let mut gzip = GzBuilder::new().mtime(0).write(Vec::new(), Compression::new(6));
    gzip.write_all(&tar)?;
    let blob = gzip.finish()?;
    Ok(Layer {
        info: LayerInfo {
            digest: digest_of(&blob),
            diff_id: digest_of(&tar),
            size: blob.len() as u64,
            unpacked_bytes,
        },
        blob,
    })
}

/// A path is relative, `/`-separated and stays inside the image.
fn check_path(path: &str) -> Result<()> {
    if path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        bail!(
            "`{path}` cannot be a file of an image layer (a relative path without `.`, `..` or empty parts)"
        );
    }
    Ok(())
}

/// What the image runs: the base's config with these over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The handler, as Lambda's base images take it: `CMD ["module.function"]`.
    pub cmd: Vec<String>,
    /// The function's variables, after the base's.
    pub env: Vec<(String, String)>,
}

/// The image config: `base`'s (its `architecture`, `os`, `config` and
/// `rootfs.diff_ids`) with `layers` added on top and `run` applied.
/// `history` and `created` are left out: they hold times.
pub fn config(base: &Value, layers: &[LayerInfo], run: &Run) -> Result<Vec<u8>> {
    let mut diff_ids: Vec<Value> = base["rootfs"]["diff_ids"]
        .as_array()
        .context("the base image's config has no rootfs.diff_ids")?
        .clone();
    diff_ids.extend(layers.iter().map(|layer| Value::from(layer.diff_id.clone())));
    let mut config = base["config"].clone();
    if !config.is_object() {
        config = json!({});
    }
    let mut env: Vec<Value> = config["Env"].as_array().cloned().unwrap_or_default();
    env.extend(
        run.env
            .iter()
            .map(|(name, value)| Value::from(format!("{name}={value}"))),
    );
    config["Env"] = Value::from(env);
    config["Cmd"] = Value::from(run.cmd.clone());
    let value = json!({
        "architecture": base["architecture"],
        "os": base["os"],
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    Ok(serde_json::to_vec(&value)?)
}

/// A descriptor of a blob.
fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest_of(bytes), "size": bytes.len()})
}

/// The image manifest: the config, then the base's layer descriptors (as
/// the base's manifest lists them) and `layers` on top.
pub fn manifest(config: &[u8], base_layers: &[Value], layers: &[LayerInfo]) -> Result<Vec<u8>> {
    let mut all = base_layers.to_vec();
    all.extend(
        layers
            .iter()
            .map(|layer| json!({"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size})),
    );
    let value = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": descriptor(MEDIA_CONFIG, config),
        "layers": all,
    });
    Ok(serde_json::to_vec(&value)?)
}

/// The OCI image layout's marker file, `oci-layout`, and its content.
pub const LAYOUT_MARKER: &str = "oci-layout";
pub const LAYOUT_VERSION: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The layout's `index.json`, and where its blobs are.
pub const LAYOUT_INDEX: &str = "index.json";
pub const LAYOUT_BLOBS: &str = "blobs/sha256";

/// The layout's `index.json`: the one manifest, named `name` for the
/// engines that load a layout (`docker load` takes the
/// `io.containerd.image.name` annotation as the image's name).
pub fn index(manifest: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut entry = descriptor(MEDIA_MANIFEST, manifest);
    entry["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit_once(':').map_or("latest", |(_, tag)| tag),
    });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [entry],
    });
    Ok(serde_json::to_vec(&index)?)
}

/// Writes a whole OCI image layout at `dest` (replacing it): `blobs`,
/// the config and the manifest under `blobs/sha256/`, `oci-layout` and
/// `index.json`. The build places an image's layout from the store
/// instead (its blobs are shared); this is for a layout made at once.
/// Returns the manifest's digest.
pub fn write_layout(
    dest: &std::path::Path,
    blobs: &[&[u8]],
    config: &[u8],
    manifest: &[u8],
) -> Result<String> {
    let work = crate::ground::atomic::TempDir::beside(dest)?;
    let dir = work.path().join(LAYOUT_BLOBS);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for blob in blobs.iter().chain([&config, &manifest]) {
        crate::ground::atomic::write_atomic(&dir.join(blob_name(&digest_of(blob))), blob)?;
    }
    crate::ground::atomic::write_atomic(&work.path().join(LAYOUT_MARKER), LAYOUT_VERSION)?;
    crate::ground::atomic::write_atomic(&work.path().join(LAYOUT_INDEX), &index(manifest, "image:latest")?)?;
    work.persist(dest)?;
    Ok(digest_of(manifest))
}

/// The file name of a blob in a layout's `blobs/sha256/` (and in the
/// store): its digest's hex.
pub fn blob_name(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// Reads one gzip'd tar layer's regular files in order, each given to
/// `into` as (path, bytes, executable): what `smoke` and `invoke` run an
/// image function from.
pub fn unpack_layer(
    blob: &std::path::Path,
    mut into: impl FnMut(&str, Vec<u8>, bool) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(blob).with_context(|| format!("opening {}", blob.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let executable = entry.header().mode().unwrap_or(0) & 0o111 != 0;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        into(&path, bytes, executable)?;
    }
    Ok(())
}

/// Writes the OCI image layout in `dir` as one tar to `out`, as `docker
/// load` reads it: `oci-layout`, `index.json` and `blobs/sha256/…`, and the
/// `manifest.json` of `docker save`'s format (config, layers and the name
/// `index.json` gives the image), which engines older than Docker 25 need.
pub fn layout_tar(dir: &std::path::Path, out: impl Write) -> Result<()> {
    let read = |name: &str| -> Result<Vec<u8>> {
        std::fs::read(dir.join(name)).with_context(|| format!("reading {} in {}", name, dir.display()))
    };
    let index: Value = serde_json::from_slice(&read(LAYOUT_INDEX)?).context("index.json is not JSON")?;
    let entry = &index["manifests"][0];
    let digest = entry["digest"].as_str().context("index.json names no manifest")?;
    let manifest: Value = serde_json::from_slice(&read(&format!("{LAYOUT_BLOBS}/{}", blob_name(digest)))?)
        .context("the image manifest is not JSON")?;
    let blob_path = |value: &Value| -> Result<String> {
        let digest = value["digest"]
            .as_str()
            .context("a descriptor without a digest")?;
        Ok(format!("{LAYOUT_BLOBS}/{}", blob_name(digest)))
    };
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .context("the image manifest has no layers")?
        .iter()
        .map(blob_path)
        .collect::<Result<_>>()?;
    let name = entry["annotations"]["io.containerd.image.name"].as_str();
    let save = json!([{
        "Config": blob_path(&manifest["config"])?,
        "RepoTags": name.map(|name| vec![name]).unwrap_or_default(),
        "Layers": layers,
    }]);
    let save = serde_json::to_vec(&save)?;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut header = tar::Header::new_gnu();
    header.set_size(save.len() as u64);
    header.set_mode(FILE_MODE);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "manifest.json", save.as_slice())?;
    let blobs = dir.join(LAYOUT_BLOBS);
    let mut names: Vec<String> = std::fs::read_dir(&blobs)
        .with_context(|| format!("reading {}", blobs.display()))?
        .map(|item| item.map(|item| item.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    let mut files = vec![LAYOUT_MARKER.to_string(), LAYOUT_INDEX.to_string()];
    files.extend(names.iter().map(|name| format!("{LAYOUT_BLOBS}/{name}")));
    for name in files {
        tar.append_path_with_name(dir.join(&name), &name)
            .with_context(|| format!("adding {name} of {}", dir.display()))?;
    }
    tar.finish().context("finishing the layout's tar")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn file(path: &str, text: &str) -> File {
        File {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
            executable: false,
        }
    }

    /// The tar inside a layer: each entry's path, type, mode, mtime, owner.
    fn entries(layer: &Layer) -> Vec<(String, char, u32, u64, u64)> {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(layer.blob.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(digest_of(&tar), layer.info.diff_id);
        let mut archive = tar::Archive::new(tar.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                let kind = if header.entry_type().is_dir() { 'd' } else { 'f' };
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                (
                    path,
                    kind,
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_layer_is_sorted_with_its_directories_and_the_same_whatever_the_order_given() {
        let long = format!("opt/python/{}/module.py", "a".repeat(120));
        let files = vec![
            file("var/task/handler.py", "def handler(e, c): return 1\n"),
            File {
                executable: true,
                ..file("opt/python/bin/tool", "#!/bin/sh\n")
            },
            file(&long, "x = 1\n"),
        ];
        let one = layer(files.clone()).unwrap();
        let reversed = layer(files.into_iter().rev().collect()).unwrap();
        assert_eq!(one, reversed, "the order files are given in changes nothing");
        let listed = entries(&one);
        let paths: Vec<&str> = listed.iter().map(|entry| entry.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/",
                "opt/python/",
                &format!("opt/python/{}/", "a".repeat(120)),
                &long,
                "opt/python/bin/",
                "opt/python/bin/tool",
                "var/",
                "var/task/",
                "var/task/handler.py",
            ]
        );
        for (path, kind, mode, mtime, uid) in &listed {
            let expected = match (kind, path.ends_with("tool")) {
                ('d', _) | (_, true) => 0o755,
                _ => 0o644,
            };
            assert_eq!((*mode, *mtime, *uid), (expected, 0, 0), "{path}");
        }
        assert_eq!(one.info.unpacked_bytes, 28 + 10 + 6);
    }

    #[test]
    fn a_changed_file_changes_its_layer_only_and_bad_paths_are_refused() {
        let a = layer(vec![file("var/task/h.py", "v = 1\n")]).unwrap();
        let b = layer(vec![file("var/task/h.py", "v = 2\n")]).unwrap();
        assert_ne!(a.info.digest, b.info.digest);
        assert_eq!(a, layer(vec![file("var/task/h.py", "v = 1\n")]).unwrap());
        for bad in ["/etc/passwd", "var/../etc", "var//x", "var/task/", ""] {
            let err = layer(vec![file(bad, "x")]).unwrap_err();
            assert!(err.to_string().contains("cannot be a file"), "{bad}: {err}");
        }
        let twice = layer(vec![file("a/b", "1"), file("a/b", "2")]).unwrap_err();
        assert!(twice.to_string().contains("two files"), "{twice}");
    }

    #[test]
    fn config_manifest_and_layout_name_every_blob_by_its_digest() {
        let base = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"], "Entrypoint": ["/lambda-entrypoint.sh"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
            "history": [{"created": "2025-01-01T00:00:00Z"}],
        });
        let top = layer(vec![file("var/task/h.py", "v = 1\n")]).unwrap();
        let run = Run {
            cmd: vec!["h.handler".into()],
            env: vec![("MODE".into(), "local".into())],
        };
        let config_bytes = config(&base, std::slice::from_ref(&top.info), &run).unwrap();
        let parsed: Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(
            parsed["rootfs"]["diff_ids"],
            json!(["sha256:base", top.info.diff_id])
        );
        assert_eq!(parsed["config"]["Cmd"], json!(["h.handler"]));
        assert_eq!(parsed["config"]["Entrypoint"], json!(["/lambda-entrypoint.sh"]));
        assert_eq!(parsed["config"]["Env"], json!(["PATH=/usr/bin", "MODE=local"]));
        assert!(parsed.get("history").is_none() && parsed.get("created").is_none());
        let base_layer = json!({"mediaType": MEDIA_LAYER_GZIP, "digest": "sha256:b", "size": 1});
        let manifest_bytes = manifest(
            &config_bytes,
            std::slice::from_ref(&base_layer),
            std::slice::from_ref(&top.info),
        )
        .unwrap();
        let parsed: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(parsed["layers"][0], base_layer);
        assert_eq!(parsed["layers"][1]["digest"], top.info.digest.as_str());
        assert_eq!(parsed["layers"][1]["digest"], digest_of(&top.blob).as_str());
        assert_eq!(parsed["layers"][1]["size"], top.blob.len());
        assert_eq!(parsed["config"]["digest"], digest_of(&config_bytes).as_str());

        let index_bytes = index(&manifest_bytes, "lambda/h:latest").unwrap();
        let index: Value = serde_json::from_slice(&index_bytes).unwrap();
        assert_eq!(
            index["manifests"][0]["digest"],
            digest_of(&manifest_bytes).as_str()
        );
        assert_eq!(index["manifests"][0]["mediaType"], MEDIA_MANIFEST);
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "lambda/h:latest"
        );
        assert_eq!(blob_name(&top.info.digest).len(), 64);
    }
}
