//! What a registry's manifests say, read strictly: an image manifest (its
//! config and layers) or an index (a manifest per platform), in the OCI
//! image specification's media types (manifest.md, image-index.md,
//! descriptor.md) or Docker's v2 schema 2 (manifest list and manifest).
//! Every digest is `sha256:` and 64 hex digits, since it names a file.

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::facts::Arch;
use crate::ground::digest::is_sha256_hex;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// What a manifest request accepts, in the `Accept` header.
pub const ACCEPTED: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const LAYERS: [&str; 2] = [OCI_LAYER_GZIP, DOCKER_LAYER_GZIP];
const CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// The most a manifest or an index may be (the distribution spec lets a
/// registry refuse over 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;
/// The most an image config may be.
pub const CONFIG_LIMIT: u64 = 16 * 1024 * 1024;

/// A blob as a manifest names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    /// `sha256:<64 hex>`.
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    /// The 64 hex digits of the digest (a blob's file name).
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// A platform an index lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    media_type: Option<String>,
    digest: String,
    size: u64,
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Entry>>,
}

/// A manifest as fetched.
#[derive(Debug)]
pub enum Parsed {
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        manifests: Vec<(Descriptor, Option<Platform>)>,
    },
}

/// Whether `digest` is `sha256:` and 64 lowercase hex digits.
pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(is_sha256_hex)
}

/// Reads a manifest; `content_type` is the answer's, for a manifest that
/// does not name its own media type (Docker's may not).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed> {
    let raw: Raw = serde_json::from_slice(bytes).context("it is not a JSON image manifest")?;
    if raw.schema_version != Some(2) {
        bail!(
            "it has schemaVersion {:?}, and only schema 2 (OCI, Docker v2) is read",
            raw.schema_version
        );
    }
    let content_type = content_type.map(|value| value.split(';').next().unwrap_or("").trim());
    let media_type = raw
        .media_type
        .as_deref()
        .or(content_type)
        .unwrap_or("")
        .to_string();
    if let Some(manifests) = raw.manifests {
        if !matches!(media_type.as_str(), OCI_INDEX | DOCKER_LIST | "") {
            bail!("it lists manifests but its media type is `{media_type}`");
        }
        let mut out = Vec::new();
        for entry in manifests {
            check_digest(&entry.digest)?;
            let descriptor = Descriptor {
                media_type: entry.media_type.unwrap_or_default(),
                digest: entry.digest,
                size: entry.size,
            };
            out.push((descriptor, entry.platform));
        }
        return Ok(Parsed::Index { manifests: out });
    }
    let (Some(config), Some(layers)) = (raw.config, raw.layers) else {
        bail!("it has neither `manifests` (an index) nor `config` and `layers` (an image manifest)");
    };
    let media_type = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => media_type,
        "" => OCI_MANIFEST.to_string(),
        other => bail!("its media type `{other}` is not an image manifest's"),
    };
    check_digest(&config.digest)?;
    if !CONFIGS.contains(&config.media_type.as_str()) {
        bail!(
            "its config has the media type `{}`, not an image config's",
            config.media_type
        );
    }
    if config.size > CONFIG_LIMIT {
        bail!(
            "its config claims {} bytes, over the {CONFIG_LIMIT} read",
            config.size
        );
    }
    for layer in &layers {
        check_digest(&layer.digest)?;
        if !LAYERS.contains(&layer.media_type.as_str()) {
            bail!(
                "its layer {} has the media type `{}`; only gzip-compressed tar layers are read ({})",
                layer.digest,
                layer.media_type,
                LAYERS.join(", ")
            );
        }
        if layer.size > crate::facts::MAX_IMAGE_BYTES {
            bail!(
                "its layer {} claims {} bytes, over Lambda's image limit",
                layer.digest,
                layer.size
            );
        }
    }
    Ok(Parsed::Image {
        media_type,
        config,
        layers,
    })
}

fn check_digest(digest: &str) -> Result<()> {
    if !is_digest(digest) {
        bail!("it names the digest `{digest}`, which is not `sha256:` and 64 hex digits");
    }
    Ok(())
}

/// The entry of an index for `linux/<arch>`; the error lists the
/// platforms the index has.
pub fn select_platform(
    manifests: &[(Descriptor, Option<Platform>)],
    arch: Arch,
) -> std::result::Result<&Descriptor, String> {
    let wanted = arch.oci_name();
    let matches = |platform: &Platform| {
        platform.os == "linux"
            && platform.architecture == wanted
            // arm64 images are `v8` or name no variant.
            && platform.variant.as_deref().is_none_or(|variant| variant == "v8" || arch != Arch::Arm64)
    };
    manifests
        .iter()
        .find(|(descriptor, platform)| {
            platform.as_ref().is_some_and(matches)
                && matches!(
                    descriptor.media_type.as_str(),
                    OCI_MANIFEST | DOCKER_MANIFEST | ""
                )
        })
        .map(|(descriptor, _)| descriptor)
        .ok_or_else(|| {
            let mut have: Vec<String> = manifests
                .iter()
                .map(|(_, platform)| match platform {
                    Some(platform) => match &platform.variant {
                        Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
                        None => format!("{}/{}", platform.os, platform.architecture),
                    },
                    None => "no platform".to_string(),
                })
                .collect();
            have.dedup();
            if have.is_empty() {
                "it lists no image at all".to_string()
            } else {
                format!("it has {}", have.join(", "))
            }
        })
}

/// The `architecture` and `os` an image config states.
pub fn config_platform(config: &[u8]) -> Result<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(config).context("the image config is not JSON")?;
    let text = |key: &str| value[key].as_str().unwrap_or("").to_string();
    Ok((text("architecture"), text("os")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: char) -> String {
        format!("sha256:{}", n.to_string().repeat(64))
    }

    fn index(platforms: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        let manifests: Vec<serde_json::Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(variant) = variant {
                    platform["variant"] = (*variant).into();
                }
                serde_json::json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": digest(char::from_digit(i as u32 + 1, 16).unwrap()),
                    "size": 100,
                    "platform": platform,
                })
            })
            .collect();
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
        )
        .unwrap()
    }

    #[test]
    fn an_index_is_followed_to_the_linux_entry_of_the_architecture() {
        let bytes = index(&[
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("unknown", "unknown", None),
        ]);
        let Parsed::Index { manifests } = parse(&bytes, None).unwrap() else {
            panic!("an index")
        };
        assert_eq!(
            select_platform(&manifests, Arch::X86_64).unwrap().digest,
            digest('1')
        );
        assert_eq!(
            select_platform(&manifests, Arch::Arm64).unwrap().digest,
            digest('2')
        );
        let only_amd = index(&[("linux", "amd64", None), ("unknown", "unknown", None)]);
        let Parsed::Index { manifests } = parse(&only_amd, Some(OCI_INDEX)).unwrap() else {
            panic!("an index")
        };
        let err = select_platform(&manifests, Arch::Arm64).unwrap_err();
        assert_eq!(err, "it has linux/amd64, unknown/unknown");
    }

    #[test]
    fn image_manifests_are_read_strictly() {
        let manifest = |layer_type: &str, layer_digest: &str| {
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest('c'), "size": 10},
                "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": 20}],
            }))
            .unwrap()
        };
        let Parsed::Image {
            media_type,
            config,
            layers,
        } = parse(&manifest(DOCKER_LAYER_GZIP, &digest('a')), None).unwrap()
        else {
            panic!("an image manifest")
        };
        assert_eq!(media_type, DOCKER_MANIFEST);
        assert_eq!(config.hex(), "c".repeat(64));
        assert_eq!(layers[0].size, 20);
        let zstd = parse(
            &manifest("application/vnd.oci.image.layer.v1.tar+zstd", &digest('a')),
            None,
        )
        .unwrap_err();
        assert!(
            zstd.to_string().contains("only gzip-compressed tar layers"),
            "{zstd}"
        );
        let escape = parse(&manifest(OCI_LAYER_GZIP, "sha256:../../etc/passwd"), None).unwrap_err();
        assert!(
            escape.to_string().contains("not `sha256:` and 64 hex"),
            "{escape}"
        );
        let schema1 = parse(br#"{"schemaVersion": 1}"#, None).unwrap_err();
        assert!(schema1.to_string().contains("schemaVersion"), "{schema1}");
    }
}
