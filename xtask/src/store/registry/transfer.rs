//! Whole images moved: one pulled into a folder (its platform manifest and
//! every blob it names, each verified), an OCI image layout pushed (the
//! blobs the registry lacks uploaded, then the manifest by its digest).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::client::{Client, Resolved};
use super::manifest::{self, Descriptor, Parsed, CONFIG_LIMIT};
use super::upload::Sent;
use super::{digest_of, Reference};
use crate::facts::Arch;
use crate::ground::atomic::write_atomic;
use crate::ground::digest::file_sha256;

/// An image pulled into a folder.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// `registry/repository@<platform manifest digest>`.
    pub reference: Reference,
    /// The platform manifest (its bytes are the folder's `manifest.json`).
    pub manifest: Resolved,
    /// The image config, read (its bytes are the folder's `<config hex>`).
    pub config: serde_json::Value,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest: the image is `repository@digest`.
    pub digest: String,
    /// The blobs uploaded, those mounted from the base's repository, and
    /// those the registry had already.
    pub uploaded: Vec<String>,
    pub mounted: Vec<String>,
    pub present: Vec<String>,
}

/// Pulls `reference`'s image for `linux/<arch>` into `dest` (created):
/// every blob (config and layers) as `dest/<hex>`, verified, and
/// `manifest.json`, the platform manifest's exact bytes. A blob already
/// there with the right digest is not fetched again. The config must say
/// `linux` and `arch`.
pub fn pull(reference: &Reference, arch: Arch, dest: &Path) -> Result<Pulled> {
    let client = Client::new(reference, false)?;
    let resolved = client.platform_manifest(reference, arch)?;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let repository = &reference.repository;
    let config_path = fetch(&client, repository, &resolved.config, dest)?;
    let config_bytes =
        fs::read(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let (got_arch, got_os) = manifest::config_platform(&config_bytes)
        .with_context(|| format!("reading the image config of {reference}"))?;
    if got_os != "linux" || got_arch != arch.oci_name() {
        bail!(
            "{reference} is an image for {got_os}/{got_arch}, not linux/{} as the function's architecture `{}` needs: \
             use a base built for linux/{} (or an index that has one), or set the function's architecture to match",
            arch.oci_name(),
            arch.name(),
            arch.oci_name()
        );
    }
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)?;
    for layer in &resolved.layers {
        fetch(&client, repository, layer, dest)?;
    }
    write_atomic(&dest.join("manifest.json"), &resolved.bytes)?;
    Ok(Pulled {
        reference: reference.at_digest(&resolved.digest),
        manifest: resolved,
        config,
    })
}

/// The blob of `descriptor` at `dest/<hex>`, fetched unless there already.
fn fetch(
    client: &Client,
    repository: &str,
    descriptor: &Descriptor,
    dest: &Path,
) -> Result<std::path::PathBuf> {
    let path = dest.join(descriptor.hex());
    let present = fs::metadata(&path).is_ok_and(|meta| meta.len() == descriptor.size)
        && file_sha256(&path).is_ok_and(|digest| digest.hex == descriptor.hex());
    if !present {
        client.blob_to_file(repository, &descriptor.digest, descriptor.size, &path)?;
    }
    Ok(path)
}

/// Pushes the OCI image layout at `layout` (as `store::oci::write_layout`
/// writes it: one manifest in `index.json`) to `repository` (its tag and
/// digest, if any, are not used): each blob the registry lacks (HEAD) is
/// uploaded, then the manifest by its digest, and under `tag` if given.
/// `progress` hears of each upload.
pub fn push_layout(
    layout: &Path,
    repository: &Reference,
    tag: Option<&str>,
    progress: &dyn Fn(&str),
) -> Result<Pushed> {
    push_layout_mounting(layout, repository, tag, None, progress)
}

/// [`push_layout`], where `mount_from` is a repository of the same
/// registry that may hold some of the blobs (the base's): those it holds
/// are mounted from it, not uploaded.
pub fn push_layout_mounting(
    layout: &Path,
    repository: &Reference,
    tag: Option<&str>,
    mount_from: Option<&str>,
    progress: &dyn Fn(&str),
) -> Result<Pushed> {
    if let Some(tag) = tag {
        Reference::parse(&format!(
            "{}/{}:{tag}",
            repository.registry, repository.repository
        ))
        .map_err(|why| anyhow::anyhow!("cannot push under the tag `{tag}`: {why}"))?;
    }
    let index_path = layout.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(
        &fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
    )
    .with_context(|| format!("reading {} as JSON", index_path.display()))?;
    let entries = index["manifests"].as_array().map_or(&[][..], Vec::as_slice);
    let [entry] = entries else {
        bail!(
            "{} names {} manifests; an image layout to push names one",
            index_path.display(),
            entries.len()
        );
    };
    let digest = entry["digest"].as_str().unwrap_or("").to_string();
    if !manifest::is_digest(&digest) {
        bail!(
            "{} names the manifest `{digest}`, which is not a sha256 digest",
            index_path.display()
        );
    }
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let bytes = fs::read(blob(&digest))
        .with_context(|| format!("reading the manifest {digest} of {}", layout.display()))?;
    if digest_of(&bytes) != digest {
        bail!(
            "the manifest {digest} of {} does not hash to its name: build the image again",
            layout.display()
        );
    }
    let Parsed::Image {
        media_type,
        config,
        layers,
    } = manifest::parse(&bytes, None)
        .with_context(|| format!("reading the manifest of {}", layout.display()))?
    else {
        bail!(
            "{digest} in {} is an index, not an image manifest",
            layout.display()
        );
    };
    let mut seen = BTreeSet::new();
    let mut blobs = Vec::new();
    for descriptor in std::iter::once(&config).chain(&layers) {
        if !seen.insert(descriptor.digest.clone()) {
            continue;
        }
        let path = blob(&descriptor.digest);
        let size = fs::metadata(&path)
            .with_context(|| {
                format!(
                    "the image layout {} lacks the blob {}",
                    layout.display(),
                    descriptor.digest
                )
            })?
            .len();
        if size != descriptor.size {
            bail!(
                "the blob {} of {} is {size} bytes, not the {} its manifest says: build the image again",
                descriptor.digest,
                layout.display(),
                descriptor.size
            );
        }
        blobs.push((descriptor.digest.clone(), path, size));
    }
    if config.size > CONFIG_LIMIT {
        bail!(
            "the image config of {} is over {CONFIG_LIMIT} bytes",
            layout.display()
        );
    }
    let client = Client::new(repository, true)?;
    let name = &repository.repository;
    let mut pushed = Pushed {
        digest: digest.clone(),
        uploaded: Vec::new(),
        mounted: Vec::new(),
        present: Vec::new(),
    };
    let present = has_blobs(&client, name, &blobs)?;
    for ((blob_digest, path, size), present) in blobs.into_iter().zip(present) {
        if present {
            pushed.present.push(blob_digest);
            continue;
        }
        progress(&match mount_from {
            Some(from) => format!(
                "mounting {blob_digest} from {from}, else uploading it ({size} bytes), to {}/{name}",
                client.registry()
            ),
            None => format!(
                "uploading {blob_digest} ({size} bytes) to {}/{name}",
                client.registry()
            ),
        });
        let sent = client
            .upload_blob(name, &blob_digest, &path, mount_from)
            .with_context(|| format!("pushing {} to {}/{name}", layout.display(), client.registry()))?;
        match sent {
            Sent::Uploaded => pushed.uploaded.push(blob_digest),
            Sent::Mounted => pushed.mounted.push(blob_digest),
        }
    }
    client.put_manifest(name, &digest, &bytes, &media_type)?;
    if let Some(tag) = tag {
        client.put_manifest(name, tag, &bytes, &media_type)?;
    }
    Ok(pushed)
}

/// At most this many HEADs at once.
const HEADS_AT_ONCE: usize = 8;

/// Whether `repository` has each blob. The first is asked alone (a
/// registry that wants a token is asked for one once), the others side by
/// side: a request is a curl process, and most of a small push is its HEADs.
fn has_blobs(
    client: &Client,
    repository: &str,
    blobs: &[(String, std::path::PathBuf, u64)],
) -> Result<Vec<bool>> {
    let Some(((first, _, _), rest)) = blobs.split_first() else {
        return Ok(Vec::new());
    };
    let mut present = vec![client.has_blob(repository, first)?];
    for group in rest.chunks(HEADS_AT_ONCE) {
        let answers: Vec<Result<bool>> = std::thread::scope(|scope| {
            let asked: Vec<_> = group
                .iter()
                .map(|(digest, _, _)| scope.spawn(move || client.has_blob(repository, digest)))
                .collect();
            asked
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a HEAD of {repository} stopped")))
                })
                .collect()
        });
        for answer in answers {
            present.push(answer?);
        }
    }
    Ok(present)
}
