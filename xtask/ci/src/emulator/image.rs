//! Image functions against moto: their ECR repositories come first
//! (`terraform apply -target=module.ecr`, as terraform/README.md says),
//! then what `cargo xtask push` leaves in ECR, done to moto's: the image's
//! manifest put with `PutImage` (moto keeps no blobs and speaks no OCI
//! distribution API, so the layers are not uploaded) and `image.uri`
//! recorded as `<repository>@<digest>` in the manifest the stage applies;
//! then the whole apply.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use super::moto::run_python;

/// `PutImage` of one image manifest: argv endpoint, repository name,
/// media type, digest, the manifest's path.
const PUT_IMAGE: &str = r#"
import sys, boto3
endpoint, repository, media_type, digest, path = sys.argv[1:6]
with open(path, encoding="utf-8") as manifest:
    text = manifest.read()
ecr = boto3.client("ecr", endpoint_url=endpoint)
ecr.put_image(repositoryName=repository, imageManifest=text,
              imageManifestMediaType=media_type, imageDigest=digest)
"#;

/// The manifest's image functions, by name.
pub(super) fn image_functions(manifest: &Value) -> Vec<String> {
    manifest["functions"]
        .as_object()
        .map(|functions| {
            functions
                .iter()
                .filter(|(_, entry)| entry["package_type"] == "Image")
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Puts each image function's image manifest (from its OCI layout under
/// `root`) into moto's ECR repository of that function and records its
/// uri in `manifest`, as `push` would.
pub(super) fn push_to_moto(python: &Path, endpoint: &str, root: &Path, manifest: &mut Value) -> Result<()> {
    for name in image_functions(manifest) {
        let image = &manifest["functions"][&name]["image"];
        let layout = image["layout"]
            .as_str()
            .with_context(|| format!("function `{name}`: no image.layout in dist/manifest.json"))?;
        let repository = image["repository"]
            .as_str()
            .with_context(|| format!("function `{name}`: no image.repository in dist/manifest.json"))?
            .to_string();
        let digest = image["digest"]
            .as_str()
            .with_context(|| format!("function `{name}`: no image.digest in dist/manifest.json"))?
            .to_string();
        let layout = root.join(layout);
        let index_path = layout.join("index.json");
        let index: Value = serde_json::from_slice(
            &fs::read(&index_path).with_context(|| format!("reading {}", index_path.display()))?,
        )
        .with_context(|| format!("parsing {}", index_path.display()))?;
        let descriptor = index["manifests"]
            .as_array()
            .and_then(|manifests| manifests.iter().find(|item| item["digest"] == digest.as_str()))
            .with_context(|| format!("{} names no manifest {digest}", index_path.display()))?;
        let media_type = descriptor["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json");
        let hex = digest.strip_prefix("sha256:").unwrap_or(&digest);
        let blob = layout.join("blobs/sha256").join(hex);
        let (_, repository_name) = repository
            .split_once('/')
            .with_context(|| format!("function `{name}`: image.repository {repository} names no path"))?;
        run_python(
            python,
            PUT_IMAGE,
            &[
                endpoint,
                repository_name,
                media_type,
                &digest,
                &blob.to_string_lossy(),
            ],
        )
        .with_context(|| {
            format!("putting function `{name}`'s image {digest} into moto's {repository_name}")
        })?;
        manifest["functions"][&name]["image"]["uri"] = Value::String(format!("{repository}@{digest}"));
        eprintln!(
            "{}: function `{name}`: image {digest} put into moto's ECR",
            super::STAGE
        );
    }
    Ok(())
}
