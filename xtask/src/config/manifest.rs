//! `dist/manifest.json`: what was built, read by Terraform. The graph
//! writes it whole from the configuration and the nodes' outputs; the checks
//! and smoke tests read the same value in memory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::api::{Api, AuthorizerResponse};
use crate::config::{Config, LayerSource};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub runtime: String,
    pub architecture: String,
    /// The repository's log retention, days (0: never expires): Terraform
    /// gives it to the log groups of no function (the HTTP API's access log).
    #[serde(default)]
    pub log_retention_days: u64,
    #[serde(default)]
    pub layers: BTreeMap<String, LayerEntry>,
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionEntry>,
    /// The HTTP API in front of the functions, from `Cargo.toml`: what
    /// `terraform/modules/http_api` deploys. A manifest written before it
    /// existed reads as an API without routes.
    #[serde(default)]
    pub api: ApiEntry,
}

/// The HTTP API, in the terms of API Gateway's own settings (and of
/// Terraform's arguments), so that the module passes values on and decides
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiEntry {
    /// The event the integrations send: `"1.0"` or `"2.0"`.
    pub payload_format_version: String,
    /// Route key (`GET /users/{user_id}`, `$default`) → its function.
    pub routes: BTreeMap<String, RouteEntry>,
    /// `null` when the API has none.
    pub authorizer: Option<AuthorizerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub function: String,
    /// Whether the authorizer decides first.
    pub authorize: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerEntry {
    pub function: String,
    pub payload_format_version: String,
    /// `{"isAuthorized": …}` answers instead of IAM policies (2.0 only).
    pub enable_simple_responses: bool,
    /// Empty: the function is called for every request, nothing cached.
    pub identity_sources: Vec<String>,
    pub result_ttl_in_seconds: u64,
}

impl Default for ApiEntry {
    fn default() -> ApiEntry {
        ApiEntry::new(&Api::default())
    }
}

impl ApiEntry {
    pub fn new(api: &Api) -> ApiEntry {
        ApiEntry {
            payload_format_version: api.payload_format.version().to_string(),
            routes: api
                .routes
                .iter()
                .map(|route| {
                    let entry = RouteEntry {
                        function: route.function.clone(),
                        authorize: route.authorize,
                    };
                    (route.key.to_string(), entry)
                })
                .collect(),
            authorizer: api.authorizer.as_ref().map(|authorizer| AuthorizerEntry {
                function: authorizer.function.clone(),
                payload_format_version: authorizer.payload_format.version().to_string(),
                enable_simple_responses: authorizer.response == AuthorizerResponse::Simple,
                identity_sources: authorizer.identity_sources.clone(),
                result_ttl_in_seconds: authorizer.result_ttl_s,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    Requirements,
    Source,
    External,
}

/// Sizes and hashes of one written ZIP (flattened into the entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipFacts {
    pub zip: String,
    pub sha256: String,
    pub base64sha256: String,
    pub zipped_bytes: u64,
    pub unzipped_bytes: u64,
    pub files: u64,
}

/// One layer. Flat, as design.md shows it: a built layer has the ZIP keys,
/// an external one only `arn` and its declared `unzipped_bytes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEntry {
    pub kind: LayerKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipped_bytes: Option<u64>,
    pub unzipped_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    /// A dependency layer's bytecode mode and whether it was slimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytecode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slim: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// Hash of the inputs (requirements file or source tree): how check-limits
    /// tells that the manifest is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The runtimes and architectures a built layer serves (Terraform's
    /// compatible runtimes and architectures): a dependency profile's build
    /// one of each, a source layer those of every function attaching it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// A built layer's `direct` or `s3`: Terraform publishes it as told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
}

impl LayerEntry {
    /// A layer this tool wrote as a ZIP.
    pub fn built(kind: LayerKind, zip: ZipFacts, input_sha256: String) -> LayerEntry {
        LayerEntry {
            kind,
            upload: Some(Upload::for_zip(zip.zipped_bytes).name().to_string()),
            zip: Some(zip.zip),
            sha256: Some(zip.sha256),
            base64sha256: Some(zip.base64sha256),
            zipped_bytes: Some(zip.zipped_bytes),
            unzipped_bytes: zip.unzipped_bytes,
            files: Some(zip.files),
            packages: Vec::new(),
            excluded: None,
            builder: None,
            installer: None,
            bytecode: None,
            slim: None,
            cache_key: None,
            input_sha256: Some(input_sha256),
            arn: None,
            runtimes: Vec::new(),
            architectures: Vec::new(),
        }
    }

    pub fn external(arn: &str, unzipped_bytes: u64) -> LayerEntry {
        LayerEntry {
            kind: LayerKind::External,
            zip: None,
            sha256: None,
            base64sha256: None,
            zipped_bytes: None,
            unzipped_bytes,
            files: None,
            packages: Vec::new(),
            excluded: None,
            builder: None,
            installer: None,
            bytecode: None,
            slim: None,
            cache_key: None,
            input_sha256: None,
            arn: Some(arn.to_string()),
            runtimes: Vec::new(),
            architectures: Vec::new(),
            upload: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionEntry {
    #[serde(flatten)]
    pub zip: ZipFacts,
    pub handler: String,
    /// The function's own runtime and architecture.
    pub runtime: String,
    pub architecture: String,
    /// The layers attached at deploy time, in Lambda's merge order, by
    /// their names in `layers` (a dependency profile's build for the
    /// function's platform).
    pub layers: Vec<String>,
    /// Layers whose content was merged into the ZIP (`bundle = true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bundled: Vec<String>,
    /// `direct` or `s3`: whether the ZIP is small enough to upload directly.
    pub upload: String,
    pub input_sha256: String,
    /// What Lambda runs it with, from `Cargo.toml`; Terraform sets exactly these.
    pub memory_mb: u64,
    pub timeout_s: u64,
    pub ephemeral_storage_mb: u64,
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_concurrency: Option<u64>,
    pub log_retention_days: u64,
    /// Terraform's `package_type`: `Zip`, or `Image` for `package = "image"`
    /// (deployed from `image.uri`, with no layers attached and no
    /// handler or runtime of its own: the image's `CMD` is the handler).
    #[serde(default = "zip_package_type")]
    pub package_type: String,
    /// An image function's image; `None` for a ZIP function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageEntry>,
}

impl FunctionEntry {
    /// The layers whose content the function holds, in order, by their
    /// names in `layers`: an image's own image layers (not the base's, not
    /// its code), else the layers a ZIP attaches.
    pub fn contents(&self) -> Vec<String> {
        match &self.image {
            Some(image) => image
                .layers
                .iter()
                .filter(|layer| layer.name != IMAGE_BASE_LAYER && layer.name != IMAGE_FUNCTION_LAYER)
                .map(|layer| layer.name.clone())
                .collect(),
            None => self.layers.clone(),
        }
    }
}

/// The names `image.layers` gives the base's layers and the function's code.
pub const IMAGE_BASE_LAYER: &str = "base";
pub const IMAGE_FUNCTION_LAYER: &str = "function";

pub const PACKAGE_ZIP: &str = "Zip";
pub const PACKAGE_IMAGE: &str = "Image";

fn zip_package_type() -> String {
    PACKAGE_ZIP.to_string()
}

/// An image function's image, as `build` wrote it under `image.layout`
/// and as `push` put it into `image.repository`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// The base it is built on, always by digest:
    /// `public.ecr.aws/lambda/python@sha256:…`.
    pub base: String,
    /// `sha256:…` of the image manifest: the image's identity.
    pub digest: String,
    /// The OCI image layout written by the build: `dist/images/<function>`.
    pub layout: String,
    /// Where `push` puts it (`image_repository` and the function's name);
    /// `None` when no repository is configured.
    pub repository: Option<String>,
    /// `<repository>@<digest>` once this very image has been pushed there
    /// (`push` records it): what Terraform deploys. `None` before.
    pub uri: Option<String>,
    /// Every layer, uncompressed, the base's included: what Lambda's
    /// 10 GB image limit counts.
    pub unpacked_bytes: u64,
    /// Every layer as stored and pushed.
    pub compressed_bytes: u64,
    /// Bottom to top: the base's layers (`base`), one per layer the
    /// function would attach as a ZIP (by its name in `layers`), then the
    /// function's own code (`function`).
    pub layers: Vec<ImageLayerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayerEntry {
    /// `base`, a layer's name in the manifest's `layers`, or `function`.
    pub name: String,
    pub digest: String,
    pub compressed_bytes: u64,
    pub unpacked_bytes: u64,
}

/// How a ZIP reaches Lambda: in the API call itself, or through S3 when it
/// is over the direct-upload limit. Decided here, once, for functions and
/// layers; Terraform reads the decision from the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Direct,
    S3,
}

impl Upload {
    pub fn for_zip(zipped_bytes: u64) -> Upload {
        if zipped_bytes > crate::facts::MAX_DIRECT_UPLOAD_BYTES {
            Upload::S3
        } else {
            Upload::Direct
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Upload::Direct => "direct",
            Upload::S3 => "s3",
        }
    }
}

impl Manifest {
    /// Top-level module name → the configured layers that provide it: dependency
    /// layers from their inventory, source layers by their folder's name.
    pub fn providers(&self, config: &Config) -> BTreeMap<String, Vec<String>> {
        let mut providers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (layer, entry) in &self.layers {
            for name in entry.packages.iter().flat_map(|package| &package.top_level) {
                providers.entry(name.clone()).or_default().push(layer.clone());
            }
        }
        for layer in config.layers.values() {
            if let LayerSource::Source(dir) = &layer.source {
                if let Some(name) = dir.file_name().and_then(|name| name.to_str()) {
                    providers
                        .entry(name.to_string())
                        .or_default()
                        .push(layer.name.clone());
                }
            }
        }
        for layers in providers.values_mut() {
            layers.sort();
            layers.dedup();
        }
        providers
    }
}

/// What is built, as the checks and smoke tests read it: the manifest and,
/// made once for all of them, which configured layers provide each
/// top-level module.
pub struct BuiltView<'a> {
    pub manifest: &'a Manifest,
    pub providers: BTreeMap<String, Vec<String>>,
}

impl<'a> BuiltView<'a> {
    pub fn new(manifest: &'a Manifest, config: &Config) -> BuiltView<'a> {
        BuiltView {
            manifest,
            providers: manifest.providers(config),
        }
    }
}

/// One installed distribution, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub unzipped_bytes: u64,
    /// The top-level modules and packages it makes importable.
    #[serde(default)]
    pub top_level: Vec<String>,
    /// The distributions it depends on (normalised names, every extra and
    /// marker included): what makes a dependency "used" through another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Its licence as its `METADATA` declares it: the `License-Expression`,
    /// else its `License ::` classifiers as an SPDX expression where they
    /// name one licence, else the first line of `License`; omitted when
    /// it declares none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_json() {
        let zip = ZipFacts {
            zip: "dist/layers/core.zip".into(),
            sha256: "ab".into(),
            base64sha256: "qw==".into(),
            zipped_bytes: 10,
            unzipped_bytes: 20,
            files: 3,
        };
        let mut manifest = Manifest {
            runtime: "python3.11".into(),
            architecture: "x86_64".into(),
            ..Manifest::default()
        };
        manifest.layers.insert(
            "core".into(),
            LayerEntry::built(LayerKind::Requirements, zip.clone(), "cd".into()),
        );
        manifest.layers.insert(
            "ext".into(),
            LayerEntry::external("arn:aws:lambda:x:1:layer:y:1", 99),
        );
        manifest.functions.insert(
            "f".into(),
            FunctionEntry {
                zip,
                handler: "h.lambda_handler".into(),
                runtime: "python3.11".into(),
                architecture: "x86_64".into(),
                layers: vec!["core".into(), "ext".into()],
                bundled: vec![],
                upload: "direct".into(),
                input_sha256: "ef".into(),
                memory_mb: 256,
                timeout_s: 15,
                ephemeral_storage_mb: 512,
                environment: BTreeMap::from([("A".to_string(), "b".to_string())]),
                reserved_concurrency: None,
                log_retention_days: 14,
                package_type: PACKAGE_ZIP.to_string(),
                image: None,
            },
        );
        let api = crate::config::api::Api {
            payload_format: crate::config::api::PayloadFormat::V1,
            authorizer: None,
            routes: vec![crate::config::api::Route {
                key: crate::config::api::RouteKey::parse("GET /f/{id}").unwrap(),
                function: "f".into(),
                authorize: false,
            }],
        };
        manifest.api = ApiEntry::new(&api);
        let text = serde_json::to_string(&manifest).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["api"],
            serde_json::json!({
                "payload_format_version": "1.0",
                "routes": {"GET /f/{id}": {"function": "f", "authorize": false}},
                "authorizer": null,
            })
        );
        assert_eq!(value["layers"]["core"]["unzipped_bytes"], 20);
        assert_eq!(
            value["layers"]["ext"],
            serde_json::json!({"kind": "external", "unzipped_bytes": 99, "arn": "arn:aws:lambda:x:1:layer:y:1"})
        );
        assert_eq!(value["functions"]["f"]["sha256"], "ab");
        assert_eq!(value["functions"]["f"]["memory_mb"], 256);
        assert!(value["functions"]["f"].get("reserved_concurrency").is_none());
        assert_eq!(value["layers"]["core"]["upload"], "direct");
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, manifest);
    }

    /// `report/history.json` keeps manifests of earlier builds: one written
    /// before the API was in it still reads.
    #[test]
    fn a_manifest_without_api_reads_as_an_api_without_routes() {
        let text = r#"{"runtime": "python3.11", "architecture": "x86_64"}"#;
        let manifest: Manifest = serde_json::from_str(text).unwrap();
        assert_eq!(manifest.api, ApiEntry::default());
        assert_eq!(manifest.api.payload_format_version, "2.0");
        assert!(manifest.api.routes.is_empty() && manifest.api.authorizer.is_none());
    }
}
