//! A function's software bill of materials: every distribution it ships,
//! read from its dependency layers' inventories (what their `.dist-info`
//! say, taken from the tree that was zipped), with the lock's hashes where
//! the profile is locked; its own code and its source layers by their ZIPs'
//! hashes; what the Lambda runtime provides beside them; and which
//! distribution requires which. Written as CycloneDX 1.6 JSON, with the
//! same bytes for the same inputs: no clock, and a serial number derived
//! from the content.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::manifest::Package;
use crate::facts::{self, normalize_dist_name, Arch, Runtime};
use crate::ground::atomic::write_atomic;
use crate::ground::digest::bytes_sha256;

/// The file an SBOM entry holds, and its name in `dist/sbom/`.
pub const CYCLONEDX: &str = "sbom.cdx.json";
/// The same bill as SPDX 2.3 JSON, beside it.
pub const SPDX: &str = "sbom.spdx.json";

/// SPDX wants a creation time: the ZIPs' fixed timestamp, not the clock,
/// so that the same inputs give the same bytes.
const SPDX_CREATED: &str = "1980-01-01T00:00:00Z";

/// The property that says where a component comes from.
const LAYER_PROPERTY: &str = "xtask:layer";
/// The property of what the runtime provides: present at run time, not shipped.
const PROVIDED_PROPERTY: &str = "xtask:provided-by";

/// What one SBOM describes: a function and everything that runs with it,
/// or one dependency layer.
pub struct Subject<'a> {
    /// The function's name, or the layer's in the manifest.
    pub name: &'a str,
    pub of: Of,
    pub runtime: Runtime,
    pub arch: Arch,
    /// The sha256 of the function's or the layer's ZIP.
    pub sha256: &'a str,
    /// A function's layers in Lambda's order; a layer itself.
    pub layers: Vec<Shipped<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Of {
    Function,
    Layer,
}

/// One layer of a function as the SBOM sees it, by its name in the manifest.
pub struct Shipped<'a> {
    pub name: String,
    pub kind: ShippedKind<'a>,
}

pub enum ShippedKind<'a> {
    /// A dependency layer: its inventory, and its lock's text when locked.
    Dependencies {
        packages: &'a [Package],
        lock: Option<String>,
        sha256: &'a str,
    },
    /// Application code in a source layer: its ZIP's sha256.
    Source { sha256: &'a str },
    /// An external layer: only its ARN is known.
    External { arn: &'a str },
}

/// What the SBOM entry records beside the file: each distribution's
/// licence, for the report's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomData {
    /// `name version` → its declared licence (`None`: it declares none).
    pub licenses: BTreeMap<String, Option<String>>,
}

impl SbomData {
    /// How many distributions declare each licence; those that declare
    /// none counted under `None`.
    pub fn summary(&self) -> BTreeMap<Option<&str>, usize> {
        let mut counts = BTreeMap::new();
        for license in self.licenses.values() {
            *counts.entry(license.as_deref()).or_insert(0) += 1;
        }
        counts
    }
}

/// Writes the subject's CycloneDX document into `dir`, and the same as SPDX.
pub fn write(subject: &Subject, dir: &Path) -> Result<SbomData> {
    let (document, data) = cyclonedx(subject);
    for (name, value) in [(CYCLONEDX, &document), (SPDX, &spdx(&document))] {
        let mut text = serde_json::to_string_pretty(value)?;
        text.push('\n');
        let path = dir.join(name);
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(data)
}

struct Component {
    bom_ref: String,
    value: Value,
    /// The normalised names of what it requires.
    requires: Vec<String>,
}

/// The CycloneDX 1.6 document of `subject`, and the licences it lists.
pub fn cyclonedx(subject: &Subject) -> (Value, SbomData) {
    let mut components: Vec<Component> = Vec::new();
    let mut data = SbomData::default();
    let mut refs: BTreeSet<String> = BTreeSet::new();
    if subject.of == Of::Function {
        components.push(Component {
            bom_ref: format!("function:{}", subject.name),
            value: json!({
                "type": "application",
                "name": subject.name,
                "description": "the function's own code (its ZIP)",
                "hashes": [sha256(subject.sha256)],
            }),
            requires: Vec::new(),
        });
    }
    for layer in &subject.layers {
        let layer_property = json!({"name": LAYER_PROPERTY, "value": layer.name});
        match &layer.kind {
            ShippedKind::Source { sha256: digest } => components.push(Component {
                bom_ref: format!("layer:{}", layer.name),
                value: json!({
                    "type": "library",
                    "name": layer.name,
                    "description": "application code shared as a layer (its ZIP)",
                    "hashes": [sha256(digest)],
                    "properties": [layer_property],
                }),
                requires: Vec::new(),
            }),
            ShippedKind::External { arn } => components.push(Component {
                bom_ref: format!("layer:{}", layer.name),
                value: json!({
                    "type": "library",
                    "name": layer.name,
                    "description": "an external layer, attached by ARN: its content is not known here",
                    "externalReferences": [{"type": "distribution", "url": arn}],
                    "properties": [layer_property],
                }),
                requires: Vec::new(),
            }),
            ShippedKind::Dependencies { packages, lock, .. } => {
                let hashes = lock.as_deref().map(lock_hashes).unwrap_or_default();
                let mut sorted: Vec<&Package> = packages.iter().collect();
                sorted.sort_by(|a, b| a.name.cmp(&b.name));
                for package in sorted {
                    let normalised = normalize_dist_name(&package.name);
                    let purl = purl(&package.name, &package.version);
                    let mut bom_ref = purl.clone();
                    if refs.contains(&bom_ref) {
                        // The same distribution in two layers: both ship.
                        bom_ref = format!("{purl}#{}", layer.name);
                    }
                    refs.insert(bom_ref.clone());
                    let mut value = json!({
                        "type": "library",
                        "name": package.name,
                        "version": package.version,
                        "purl": purl,
                        "properties": [layer_property.clone()],
                    });
                    if let Some(license) = &package.license {
                        value["licenses"] = json!([license_choice(license)]);
                    }
                    let key = (normalised.clone(), package.version.clone());
                    if let Some(allowed) = hashes.get(&key) {
                        value["hashes"] = Value::Array(allowed.iter().map(|digest| sha256(digest)).collect());
                    }
                    data.licenses.insert(
                        format!("{} {} ({})", package.name, package.version, layer.name),
                        package.license.clone(),
                    );
                    components.push(Component {
                        bom_ref,
                        value,
                        requires: package.requires.clone(),
                    });
                }
            }
        }
    }
    let provided = match subject.of {
        Of::Function => runtime_provided(subject.runtime),
        Of::Layer => Vec::new(),
    };
    for (name, version) in provided {
        let purl = match version {
            Some(version) => purl(name, version),
            None => format!("pkg:pypi/{}", normalize_dist_name(name)),
        };
        if refs.contains(&purl) {
            continue;
        }
        refs.insert(purl.clone());
        let mut value = json!({
            "type": "library",
            "name": name,
            "purl": purl,
            "description": "provided by the Lambda runtime, not shipped",
            "properties": [{"name": PROVIDED_PROPERTY, "value": format!("runtime {}", subject.runtime.name)}],
        });
        if let Some(version) = version {
            value["version"] = json!(version);
        }
        components.push(Component {
            bom_ref: purl,
            value,
            requires: Vec::new(),
        });
    }
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));

    // Which component each normalised name is (the first, in order: a
    // distribution shipped twice is required as the copy that runs first).
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for component in &components {
        if let Some(name) = component.value["name"].as_str() {
            if component.bom_ref.starts_with("pkg:pypi/") {
                by_name
                    .entry(normalize_dist_name(name))
                    .or_insert(component.bom_ref.clone());
            }
        }
    }
    let mut required: BTreeSet<String> = BTreeSet::new();
    let mut dependencies = Vec::new();
    for component in &components {
        let depends_on: BTreeSet<&String> = component
            .requires
            .iter()
            .filter_map(|name| by_name.get(name))
            .filter(|target| **target != component.bom_ref)
            .collect();
        required.extend(depends_on.iter().map(|target| target.to_string()));
        dependencies.push(json!({"ref": component.bom_ref, "dependsOn": depends_on}));
    }
    let subject_ref = match subject.of {
        Of::Function => format!("lambda:{}", subject.name),
        Of::Layer => format!("layer:{}", subject.name),
    };
    let roots: Vec<&String> = components
        .iter()
        .map(|component| &component.bom_ref)
        .filter(|bom_ref| !required.contains(*bom_ref))
        .collect();
    dependencies.insert(0, json!({"ref": subject_ref, "dependsOn": roots}));

    let values: Vec<Value> = components
        .into_iter()
        .map(|component| {
            let mut value = component.value;
            value["bom-ref"] = json!(component.bom_ref);
            value
        })
        .collect();
    let mut document = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "cargo xtask"}]},
            "component": {
                "type": if subject.of == Of::Function { "application" } else { "library" },
                "bom-ref": subject_ref,
                "name": subject.name,
                "description": match subject.of {
                    Of::Function => "an AWS Lambda function with its layers",
                    Of::Layer => "an AWS Lambda layer of Python distributions",
                },
                "properties": [
                    {"name": "xtask:runtime", "value": subject.runtime.name},
                    {"name": "xtask:architecture", "value": subject.arch.name()},
                ],
            },
        },
        "components": values,
        "dependencies": dependencies,
    });
    if subject.of == Of::Layer {
        document["metadata"]["component"]["hashes"] = json!([sha256(subject.sha256)]);
    }
    document["serialNumber"] = json!(serial_number(&document));
    (document, data)
}

/// The same bill as an SPDX 2.3 document: a package per component (and
/// for the subject), `DESCRIBES` the subject, `DEPENDS_ON` as CycloneDX's
/// `dependencies` say, the declared licence as `licenseDeclared` where it
/// is an SPDX expression (else `NOASSERTION`), the purl as an external
/// reference. Its namespace is the CycloneDX serial number; its creation
/// time is fixed ([`SPDX_CREATED`]).
pub fn spdx(document: &Value) -> Value {
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut packages = Vec::new();
    let subject = &document["metadata"]["component"];
    let all = std::iter::once(subject).chain(document["components"].as_array().into_iter().flatten());
    for component in all {
        let bom_ref = component["bom-ref"].as_str().unwrap_or_default();
        let mut id: String = bom_ref
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '.' || ch == '-' {
                    ch
                } else {
                    '-'
                }
            })
            .collect();
        id = format!("SPDXRef-{id}");
        if ids.values().any(|taken| *taken == id) {
            id = format!("{id}-{}", ids.len());
        }
        ids.insert(bom_ref.to_string(), id.clone());
        let declared = component["licenses"][0]["expression"]
            .as_str()
            .unwrap_or("NOASSERTION");
        let mut package = json!({
            "SPDXID": id,
            "name": component["name"],
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "copyrightText": "NOASSERTION",
        });
        if let Some(version) = component["version"].as_str() {
            package["versionInfo"] = json!(version);
        }
        if let Some(description) = component["description"].as_str() {
            package["comment"] = json!(description);
        }
        if let Some(purl) = component["purl"].as_str() {
            package["externalRefs"] = json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }]);
        }
        if let Some(hashes) = component["hashes"].as_array() {
            package["checksums"] = hashes
                .iter()
                .map(|hash| json!({"algorithm": "SHA256", "checksumValue": hash["content"]}))
                .collect();
        }
        if let Some(layer) = component["properties"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|property| property["name"] == LAYER_PROPERTY)
        {
            package["sourceInfo"] = json!(format!(
                "shipped in layer {}",
                layer["value"].as_str().unwrap_or_default()
            ));
        }
        packages.push(package);
    }
    let subject_id = ids
        .get(subject["bom-ref"].as_str().unwrap_or_default())
        .cloned()
        .unwrap_or_default();
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": subject_id,
    })];
    for dependency in document["dependencies"].as_array().into_iter().flatten() {
        let Some(from) = dependency["ref"].as_str().and_then(|bom_ref| ids.get(bom_ref)) else {
            continue;
        };
        for to in dependency["dependsOn"].as_array().into_iter().flatten() {
            if let Some(to) = to.as_str().and_then(|bom_ref| ids.get(bom_ref)) {
                relationships.push(json!({
                    "spdxElementId": from,
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": to,
                }));
            }
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject["name"],
        "documentNamespace": document["serialNumber"],
        "creationInfo": {"created": SPDX_CREATED, "creators": ["Tool: cargo-xtask"]},
        "packages": packages,
        "relationships": relationships,
    })
}

/// `urn:uuid:…` from the document's own hash: the same content, the same
/// serial number (version 5's bits, so that CycloneDX's schema accepts it).
fn serial_number(document: &Value) -> String {
    let hex = bytes_sha256(document.to_string().as_bytes());
    let mut digits: Vec<char> = hex[..32].chars().collect();
    digits[12] = '5';
    let variant = u8::from_str_radix(&digits[16].to_string(), 16).unwrap_or(0);
    digits[16] = char::from_digit(u32::from(8 | (variant & 3)), 16).unwrap_or('8');
    let digits: String = digits.into_iter().collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &digits[..8],
        &digits[8..12],
        &digits[12..16],
        &digits[16..20],
        &digits[20..32]
    )
}

fn sha256(hex: &str) -> Value {
    json!({"alg": "SHA-256", "content": hex})
}

/// The package URL of a PyPI distribution: its normalised name, lowercase
/// with `-` (https://github.com/package-url/purl-spec, type `pypi`).
pub fn purl(name: &str, version: &str) -> String {
    format!("pkg:pypi/{}@{version}", normalize_dist_name(name))
}

/// A declared licence as CycloneDX takes it: an SPDX expression when it
/// reads as one, else a name.
fn license_choice(license: &str) -> Value {
    if is_spdx_expression(license) {
        json!({"expression": license})
    } else {
        json!({"license": {"name": license}})
    }
}

/// Whether `text` has the shape of an SPDX licence expression: ids of
/// letters, digits, `.`, `-` and `+`, joined by `AND`, `OR` and `WITH`,
/// with parentheses. `BSD License` or a licence's first line is not one.
pub fn is_spdx_expression(text: &str) -> bool {
    let spaced = text.replace('(', " ( ").replace(')', " ) ");
    let mut expect_id = true;
    let mut any = false;
    for token in spaced.split_whitespace() {
        match token {
            "(" | ")" => {}
            "AND" | "OR" | "WITH" if !expect_id => expect_id = true,
            id if expect_id
                && id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ".-+:".contains(ch))
                && id.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric()) =>
            {
                expect_id = false;
                any = true;
            }
            _ => return false,
        }
    }
    any && !expect_id
}

/// The SPDX ids an expression names (`MIT OR Apache-2.0` → both).
pub fn license_ids(expression: &str) -> Vec<String> {
    expression
        .replace(['(', ')'], " ")
        .split_whitespace()
        .filter(|token| !matches!(*token, "AND" | "OR" | "WITH"))
        .map(str::to_string)
        .collect()
}

/// What the runtime provides, with the version the tool's facts pin where
/// they pin one.
fn runtime_provided(runtime: Runtime) -> Vec<(&'static str, Option<&'static str>)> {
    let pinned = [facts::RUNTIME_BOTO3, facts::runtime_interface_client(runtime)];
    let version_of = |name: &str| {
        pinned
            .iter()
            .find_map(|pin| pin.split_once("==").filter(|(pinned, _)| *pinned == name))
            .map(|(_, version)| version)
    };
    let mut provided: Vec<(&'static str, Option<&'static str>)> = facts::RUNTIME_PROVIDED
        .iter()
        .map(|name| (*name, version_of(name)))
        .collect();
    if let Some((name, version)) = facts::runtime_interface_client(runtime).split_once("==") {
        provided.push((name, Some(version)));
    }
    provided
}

/// The sha256 of every file a lock allows for each pin, by (normalised
/// name, version): the wheel that was installed is one of them.
pub fn lock_hashes(lock: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut hashes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in lock.lines() {
        let trimmed = line.trim();
        if line.starts_with([' ', '\t']) {
            if let (Some(pin), Some(digest)) = (&current, trimmed.strip_prefix("--hash=sha256:")) {
                let digest = digest.trim_end_matches('\\').trim();
                hashes.entry(pin.clone()).or_default().push(digest.to_string());
            }
            continue;
        }
        current = None;
        if trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let requirement = trimmed
            .trim_end_matches('\\')
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if let Some((name, version)) = requirement.split_once("==") {
            let name = name.split('[').next().unwrap_or(name);
            current = Some((normalize_dist_name(name.trim()), version.trim().to_string()));
        }
    }
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_gives_every_allowed_hash_of_each_pin() {
        let lock = "# header\n\nReq_Lib==1.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\nother==2.0 ; python_version >= '3' \\\n    --hash=sha256:cc\n";
        let hashes = lock_hashes(lock);
        assert_eq!(
            hashes[&("req-lib".to_string(), "1.0".to_string())],
            vec!["aa".to_string(), "bb".to_string()]
        );
        assert_eq!(
            hashes[&("other".to_string(), "2.0".to_string())],
            vec!["cc".to_string()]
        );
        assert_eq!(hashes.len(), 2);
    }

    #[test]
    fn spdx_expressions_are_told_from_free_text() {
        for expression in [
            "MIT",
            "MIT OR Apache-2.0",
            "(MIT AND BSD-3-Clause) OR GPL-2.0-or-later",
            "LicenseRef-x",
        ] {
            assert!(is_spdx_expression(expression), "{expression}");
        }
        for text in [
            "BSD License",
            "Apache Software License",
            "MIT OR",
            "",
            "Copyright (c) 2020 Someone",
        ] {
            assert!(!is_spdx_expression(text), "{text}");
        }
        assert_eq!(
            license_ids("(MIT AND BSD-3-Clause) OR Apache-2.0"),
            ["MIT", "BSD-3-Clause", "Apache-2.0"]
        );
    }

    #[test]
    fn the_serial_number_is_a_uuid_the_schema_accepts() {
        let serial = serial_number(&json!({"a": 1}));
        let uuid = serial.strip_prefix("urn:uuid:").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|part| part.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('5'));
        assert!("89ab".contains(&parts[3][..1]));
        assert_eq!(serial, serial_number(&json!({"a": 1})));
    }
}
