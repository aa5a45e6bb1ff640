//! What changed since the previous, different build: for each function
//! its total before and after, and in words what moved it (a distribution's
//! version, the layers attached, a part's size, its settings).

use std::collections::{BTreeMap, BTreeSet};

use super::history::Snapshot;
use crate::config::manifest::{FunctionEntry, Manifest};
use crate::facts::normalize_dist_name;
use crate::ground::progress::signed_bytes;
use crate::steps::limits::FunctionReport;

/// The comparison with the previous, different build.
pub(crate) struct Changes {
    pub previous: bool,
    pub functions: Vec<Change>,
}

pub(crate) struct Change {
    pub function: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub added: bool,
    pub removed: bool,
    pub details: Vec<String>,
}

impl Change {
    pub fn delta(&self) -> Option<i64> {
        Some(self.after? as i64 - self.before? as i64)
    }
}

pub(super) fn changes(
    manifest: &Manifest,
    checks: &BTreeMap<String, FunctionReport>,
    previous: Option<&Snapshot>,
) -> Changes {
    let Some(previous) = previous else {
        return Changes {
            previous: false,
            functions: Vec::new(),
        };
    };
    let before = &previous.manifest;
    let names: BTreeSet<&String> = before.functions.keys().chain(manifest.functions.keys()).collect();
    let mut functions = Vec::new();
    for name in names {
        let old = before.functions.get(name);
        let new = manifest.functions.get(name);
        let change = Change {
            function: name.clone(),
            before: previous.totals.get(name).copied().filter(|_| old.is_some()),
            after: checks
                .get(name)
                .map(|report| report.total_unzipped_bytes)
                .filter(|_| new.is_some()),
            added: old.is_none(),
            removed: new.is_none(),
            details: Vec::new(),
        };
        let (Some(old), Some(new)) = (old, new) else {
            functions.push(change);
            continue;
        };
        let layers_changed = [old, new]
            .iter()
            .flat_map(|entry| entry.contents().into_iter().chain(entry.bundled.iter().cloned()))
            .any(|layer| before.layers.get(&layer) != manifest.layers.get(&layer));
        if old == new && !layers_changed {
            continue;
        }
        let mut change = change;
        change.details = function_details(old, new, before, manifest);
        functions.push(change);
    }
    Changes {
        previous: true,
        functions,
    }
}

/// `twilio 9.13.0 → 9.14.0`, `added x 1.0`, `removed y 2.0`, the layers
/// attached, and each part whose size changed.
fn function_details(
    old: &FunctionEntry,
    new: &FunctionEntry,
    before: &Manifest,
    after: &Manifest,
) -> Vec<String> {
    let mut details = package_details(old, new, before, after);
    if old.package_type != new.package_type {
        details.push(format!("package {} → {}", old.package_type, new.package_type));
    }
    let base = |entry: &FunctionEntry| entry.image.as_ref().map(|image| image.base.clone());
    if let (Some(was), Some(is)) = (base(old), base(new)) {
        if was != is {
            details.push(format!("base image {was} → {is}"));
        }
    }
    let (old_layers, new_layers) = (old.contents(), new.contents());
    if old_layers != new_layers {
        details.push(format!(
            "layers [{}] → [{}]",
            old_layers.join(", "),
            new_layers.join(", ")
        ));
    }
    if old.bundled != new.bundled {
        details.push(format!(
            "bundled [{}] → [{}]",
            old.bundled.join(", "),
            new.bundled.join(", ")
        ));
    }
    details.extend(size_details(old, new, before, after));
    if !same_settings(old, new) {
        details.push("settings (handler, runtime, memory, timeout…)".to_string());
    }
    details
}

/// The distributions a function gets, by distribution and layer: a
/// function may get one from two layers.
type Packages = BTreeMap<(String, String), (String, String)>;

fn packages(manifest: &Manifest, entry: &FunctionEntry) -> Packages {
    let mut all = Packages::new();
    for layer in entry.contents().iter().chain(&entry.bundled) {
        for package in manifest
            .layers
            .get(layer)
            .map(|entry| entry.packages.as_slice())
            .unwrap_or_default()
        {
            all.insert(
                (normalize_dist_name(&package.name), layer.clone()),
                (package.name.clone(), package.version.clone()),
            );
        }
    }
    all
}

/// Each distribution upgraded, added or removed.
fn package_details(
    old: &FunctionEntry,
    new: &FunctionEntry,
    before: &Manifest,
    after: &Manifest,
) -> Vec<String> {
    let (was, is) = (packages(before, old), packages(after, new));
    // The layer is named only for a distribution the function gets twice.
    let mut layers_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, layer) in was.keys().chain(is.keys()) {
        layers_of.entry(name).or_default().insert(layer);
    }
    let place = |(name, layer): &(String, String)| {
        if layers_of
            .get(name.as_str())
            .is_some_and(|layers| layers.len() > 1)
        {
            format!(" in layer {layer}")
        } else {
            String::new()
        }
    };
    let mut details = Vec::new();
    for (key, (name, version)) in &is {
        match was.get(key) {
            Some((_, old_version)) if old_version != version => {
                details.push(format!("{name} {old_version} → {version}{}", place(key)));
            }
            Some(_) => {}
            None => details.push(format!("added {name} {version}{}", place(key))),
        }
    }
    for (key, (name, version)) in &was {
        if !is.contains_key(key) {
            details.push(format!("removed {name} {version}{}", place(key)));
        }
    }
    details
}

/// The function's own code and each layer it kept attached, where their
/// size or bytes changed.
fn size_details(
    old: &FunctionEntry,
    new: &FunctionEntry,
    before: &Manifest,
    after: &Manifest,
) -> Vec<String> {
    let mut details = Vec::new();
    let code = new.zip.unzipped_bytes as i64 - old.zip.unzipped_bytes as i64;
    if code != 0 {
        details.push(format!("function code {}", signed_bytes(code)));
    } else if old.zip.sha256 != new.zip.sha256 {
        details.push("function code changed, same size".to_string());
    }
    let kept = old.contents();
    for layer in &new.contents() {
        if !kept.contains(layer) {
            continue;
        }
        let size = |manifest: &Manifest| manifest.layers.get(layer).map_or(0, |entry| entry.unzipped_bytes);
        let delta = size(after) as i64 - size(before) as i64;
        if delta != 0 {
            details.push(format!("layer {layer} {}", signed_bytes(delta)));
        } else if before.layers.get(layer).and_then(|entry| entry.sha256.as_ref())
            != after.layers.get(layer).and_then(|entry| entry.sha256.as_ref())
        {
            details.push(format!("layer {layer} changed, same size"));
        }
    }
    details
}

/// Whether Lambda runs both with the same settings, code and layers aside.
fn same_settings(old: &FunctionEntry, new: &FunctionEntry) -> bool {
    old.memory_mb == new.memory_mb
        && old.timeout_s == new.timeout_s
        && old.ephemeral_storage_mb == new.ephemeral_storage_mb
        && old.environment == new.environment
        && old.reserved_concurrency == new.reserved_concurrency
        && old.log_retention_days == new.log_retention_days
        && old.handler == new.handler
        && old.runtime == new.runtime
        && old.architecture == new.architecture
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::manifest::{LayerEntry, LayerKind, PACKAGE_ZIP};

    fn package(name: &str, version: &str, bytes: u64) -> crate::config::manifest::Package {
        crate::config::manifest::Package {
            name: name.into(),
            version: version.into(),
            unzipped_bytes: bytes,
            top_level: vec![name.into()],
            requires: vec![],
            license: None,
        }
    }

    /// sms with the layers core and sms, twilio at `twilio`'s version and size.
    fn build(twilio: (&str, u64), handler_bytes: u64) -> Manifest {
        use crate::config::manifest::ZipFacts;
        let zip = |path: &str, bytes: u64| ZipFacts {
            zip: path.into(),
            sha256: format!("{path}{bytes}"),
            base64sha256: String::new(),
            zipped_bytes: bytes / 2,
            unzipped_bytes: bytes,
            files: 1,
        };
        let mut manifest = Manifest::default();
        let mut core = LayerEntry::built(
            LayerKind::Requirements,
            zip("dist/layers/core.zip", 1000),
            "k".into(),
        );
        core.packages = vec![package("requests", "2.34.2", 1000)];
        let mut sms = LayerEntry::built(
            LayerKind::Requirements,
            zip("dist/layers/sms.zip", twilio.1),
            "k".into(),
        );
        sms.packages = vec![package("twilio", twilio.0, twilio.1)];
        manifest.layers.insert("core".into(), core);
        manifest.layers.insert("sms".into(), sms);
        manifest.functions.insert(
            "sms".into(),
            FunctionEntry {
                zip: zip("dist/functions/sms.zip", handler_bytes),
                handler: "sms_handler.lambda_handler".into(),
                runtime: "python3.11".into(),
                architecture: "x86_64".into(),
                layers: vec!["core".into(), "sms".into()],
                bundled: vec![],
                upload: "direct".into(),
                input_sha256: "k".into(),
                memory_mb: 256,
                timeout_s: 15,
                ephemeral_storage_mb: 512,
                environment: BTreeMap::new(),
                reserved_concurrency: None,
                log_retention_days: 14,
                package_type: PACKAGE_ZIP.to_string(),
                image: None,
            },
        );
        manifest
    }

    fn totals(manifest: &Manifest) -> BTreeMap<String, u64> {
        let sms = &manifest.functions["sms"];
        let total = sms.zip.unzipped_bytes
            + sms
                .layers
                .iter()
                .map(|layer| manifest.layers[layer].unzipped_bytes)
                .sum::<u64>();
        BTreeMap::from([("sms".to_string(), total)])
    }

    #[test]
    fn changes_name_versions_and_sizes() {
        let before = build(("9.13.0", 25_000_000), 6000);
        let after = build(("9.14.0", 27_202_009), 6000);
        let previous = Snapshot {
            totals: totals(&before),
            manifest: before,
        };
        let report: FunctionReport = serde_json::from_value(serde_json::json!({
            "layers": [], "function_unzipped_bytes": 0, "total_unzipped_bytes": totals(&after)["sms"],
            "limit_bytes": 0, "headroom_bytes": 0, "budget_bytes": null, "budget_headroom_bytes": null,
            "zipped_bytes": 0, "upload": "direct", "largest": [], "imports": {"provided": {}, "runtime": [],
            "missing": [], "unused": [], "shadowing": [], "unparsable": []}, "warnings": [], "errors": [], "ok": true
        }))
        .unwrap();
        let checks = BTreeMap::from([("sms".to_string(), report)]);
        let found = changes(&after, &checks, Some(&previous));
        assert!(found.previous);
        let [sms] = found.functions.as_slice() else {
            panic!("one function changed")
        };
        assert_eq!(sms.delta(), Some(2_202_009));
        assert_eq!(
            sms.details,
            ["twilio 9.13.0 → 9.14.0", "layer sms +2.1 MiB"],
            "{:?}",
            sms.details
        );
        let unchanged = changes(&previous.manifest, &BTreeMap::new(), Some(&previous));
        assert!(unchanged.functions.is_empty());
        assert!(!changes(&after, &checks, None).previous, "no previous build");
    }
}
