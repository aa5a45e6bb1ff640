//! `dist/sbom/<function>.cdx.json`: the SBOM lists exactly the
//! distributions the shipped layer ZIPs hold, with the lock's hashes, the
//! declared licences and `Requires-Dist` as dependencies, the function's
//! code and source layers by their ZIPs' hashes, what the runtime provides
//! beside them, and the same bytes from a build from scratch.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;

use serde_json::Value;

use crate::support::{sha256_hex, App, Repo};

const LOCK: &str = "layers/core/requirements.python3.11-x86_64.lock";

/// core: `app` 1.0 (MIT by expression, needs `helper`) and `helper` 1.0
/// (a BSD classifier), locked; `hello` attaches core and shared.
fn app() -> Repo {
    let repo = App::standard().core(&["app==1.0"]).repo();
    repo.write("lambdas/shared/__init__.py", "NAME = 'shared'\n");
    repo.write(
        "lambdas/hello/hello.py",
        "import app\n\n\ndef lambda_handler(event, context):\n    return app.V\n",
    );
    repo.wheel_with_metadata(
        "core",
        "app",
        "1.0",
        &[("app/__init__.py", "import helper\n\nV = helper.V\n")],
        &["Requires-Dist: helper", "License-Expression: MIT"],
    );
    repo.wheel_with_metadata(
        "core",
        "helper",
        "1.0",
        &[("helper.py", "V = 1\n")],
        &["Classifier: License :: OSI Approved :: BSD License"],
    );
    repo
}

fn sbom(repo: &Repo, function: &str) -> Value {
    serde_json::from_slice(&repo.read(&format!("dist/sbom/{function}.cdx.json"))).unwrap()
}

fn property<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
    component["properties"]
        .as_array()?
        .iter()
        .find(|property| property["name"] == name)
        .and_then(|property| property["value"].as_str())
}

/// `(name, version)` of every `python/*.dist-info/METADATA` in a ZIP.
fn shipped_distributions(repo: &Repo, zip: &str) -> BTreeSet<(String, String)> {
    let file = fs::File::open(repo.path().join(zip)).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.unwrap().to_string())
        .collect();
    let mut found = BTreeSet::new();
    for name in names {
        let Some(dist_info) = name
            .strip_prefix("python/")
            .and_then(|rest| rest.strip_suffix("/METADATA"))
        else {
            continue;
        };
        if dist_info.contains('/') || !dist_info.ends_with(".dist-info") {
            continue;
        }
        let mut text = String::new();
        archive.by_name(&name).unwrap().read_to_string(&mut text).unwrap();
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key))
                .unwrap()
                .trim()
                .to_string()
        };
        found.insert((field("Name:"), field("Version:")));
    }
    found
}

/// The lock's hashes of each pin, as the test reads the file.
fn lock_hashes(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut hashes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pin = String::new();
    for line in text.lines() {
        if let Some(hash) = line.trim().strip_prefix("--hash=sha256:") {
            hashes
                .entry(pin.clone())
                .or_default()
                .push(hash.trim_end_matches(" \\").to_string());
        } else if line.contains("==") && !line.starts_with('#') {
            pin = line.trim_end_matches(" \\").trim().to_string();
        }
    }
    hashes
}

#[test]
fn the_sbom_lists_what_the_zips_ship_with_the_locks_hashes_and_is_deterministic() {
    let repo = app();
    repo.xtask(&["lock"]).success();
    repo.xtask(&["build", "--builder", "host"]).success();
    let document = sbom(&repo, "hello");
    assert_eq!(document["bomFormat"], "CycloneDX");
    assert_eq!(document["specVersion"], "1.6");
    let components = document["components"].as_array().unwrap();

    // The distributions of core, as the SBOM says and as its ZIP holds them.
    let listed: BTreeSet<(String, String)> = components
        .iter()
        .filter(|component| property(component, "xtask:layer") == Some("core"))
        .map(|component| {
            (
                component["name"].as_str().unwrap().to_string(),
                component["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let shipped = shipped_distributions(&repo, "dist/layers/core.zip");
    assert_eq!(listed, shipped);
    assert_eq!(shipped.len(), 2, "{shipped:?}");

    // Each distribution's hashes are exactly the lock's for its pin.
    let hashes = lock_hashes(&String::from_utf8(repo.read(LOCK)).unwrap());
    for component in components
        .iter()
        .filter(|c| property(c, "xtask:layer") == Some("core"))
    {
        let pin = format!(
            "{}=={}",
            component["name"].as_str().unwrap(),
            component["version"].as_str().unwrap()
        );
        let listed: Vec<&str> = component["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hash| {
                assert_eq!(hash["alg"], "SHA-256");
                hash["content"].as_str().unwrap()
            })
            .collect();
        assert_eq!(listed, hashes[&pin], "{pin}");
        assert_eq!(
            component["purl"],
            format!("pkg:pypi/{}", pin.replace("==", "@")),
            "{component}"
        );
    }

    let by_ref = |bom_ref: &str| {
        components
            .iter()
            .find(|component| component["bom-ref"] == bom_ref)
            .unwrap_or_else(|| panic!("no component {bom_ref} in {document}"))
    };
    // Licences as declared: an SPDX expression, a classifier's name.
    assert_eq!(
        by_ref("pkg:pypi/app@1.0")["licenses"],
        serde_json::json!([{"expression": "MIT"}])
    );
    assert_eq!(
        by_ref("pkg:pypi/helper@1.0")["licenses"],
        serde_json::json!([{"license": {"name": "BSD License"}}])
    );
    // Requires-Dist: app depends on helper.
    let dependencies = document["dependencies"].as_array().unwrap();
    let app_dependencies = dependencies
        .iter()
        .find(|dependency| dependency["ref"] == "pkg:pypi/app@1.0")
        .unwrap();
    assert_eq!(
        app_dependencies["dependsOn"],
        serde_json::json!(["pkg:pypi/helper@1.0"])
    );
    // The code and the source layer by their ZIPs' hashes.
    assert_eq!(
        by_ref("function:hello")["hashes"][0]["content"],
        sha256_hex(&repo.path().join("dist/functions/hello.zip"))
    );
    assert_eq!(
        by_ref("layer:shared")["hashes"][0]["content"],
        sha256_hex(&repo.path().join("dist/layers/shared.zip"))
    );
    // What the runtime provides, marked as such, not as shipped.
    let boto3 = components
        .iter()
        .find(|component| component["name"] == "boto3")
        .unwrap();
    assert_eq!(property(boto3, "xtask:provided-by"), Some("runtime python3.11"));
    assert_eq!(property(boto3, "xtask:layer"), None);

    // The report links it and counts the licences.
    let report = String::from_utf8(repo.read("dist/report.html")).unwrap();
    assert!(
        report.contains(r#"<a class="sbom" href="sbom/hello.cdx.json">SBOM</a>"#)
            && report.contains("licences: <code>BSD License</code> 1, <code>MIT</code> 1."),
        "{report}"
    );

    // The layer's own SBOM lists the same distributions.
    let layer = sbom(&repo, "layers/core");
    assert_eq!(layer["metadata"]["component"]["bom-ref"], "layer:core");
    let names: BTreeSet<(String, String)> = layer["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(names, shipped);

    // The SPDX twin: the same packages, the declared licence, the lock's checksums.
    let spdx: Value = serde_json::from_slice(&repo.read("dist/sbom/hello.spdx.json")).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    assert_eq!(spdx["documentNamespace"], document["serialNumber"]);
    let app = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "app")
        .unwrap();
    assert_eq!(app["licenseDeclared"], "MIT");
    assert_eq!(
        app["checksums"][0]["checksumValue"],
        hashes["app==1.0"][0].as_str()
    );

    // Same inputs, same bytes: rebuilt from nothing.
    let files = [
        "dist/sbom/hello.cdx.json",
        "dist/sbom/hello.spdx.json",
        "dist/sbom/layers/core.cdx.json",
        "dist/sbom/layers/core.spdx.json",
    ];
    let before: Vec<Vec<u8>> = files.iter().map(|file| repo.read(file)).collect();
    repo.xtask(&["build", "--builder", "host", "--force"]).success();
    let after: Vec<Vec<u8>> = files.iter().map(|file| repo.read(file)).collect();
    assert!(before == after, "a forced rebuild changed an SBOM");
}

#[test]
fn a_new_pin_changes_the_sbom_and_a_removed_function_takes_its_sbom_along() {
    let repo = app();
    repo.wheel("core", "helper", "2.0", &[("helper.py", "V = 2\n")], &[]);
    repo.xtask(&["build", "--builder", "host"]).success();
    assert!(sbom(&repo, "hello").to_string().contains("pkg:pypi/helper@2.0"));
    repo.write(
        "layers/core/requirements.txt",
        "--no-index\n--find-links wheels\napp==1.0\nhelper==1.0\n",
    );
    repo.xtask(&["build", "--builder", "host"]).success();
    let text = sbom(&repo, "hello").to_string();
    assert!(
        text.contains("pkg:pypi/helper@1.0") && !text.contains("helper@2.0"),
        "{text}"
    );

    repo.set_metadata(
        &App::standard()
            .core(&["app==1.0"])
            .without("functions.hello")
            .metadata(),
    );
    repo.xtask(&["build", "--builder", "host"]).success();
    for gone in ["dist/sbom/hello.cdx.json", "dist/sbom/hello.spdx.json"] {
        assert!(!repo.path().join(gone).exists(), "{gone}");
    }
    assert!(repo.path().join("dist/sbom/layers/core.cdx.json").exists());
}
