//! Keeps docs/design.md true: every configuration key the code reads and
//! every key `dist/manifest.json` carries is listed there, and the page
//! lists no key the code does not know.
//!
//! The convention in docs/design.md: each list of keys is a Markdown table
//! announced by an HTML comment on a line of its own, `<!-- keys: NAME -->`
//! (invisible when rendered), followed by the table. The first column of
//! every body row holds exactly one key in backticks (`` `runtime` ``); the
//! other columns are free text. The names:
//!
//! - `config.global`, `config.layer`, `config.function`: the keys of
//!   `[workspace.metadata.lambda]`, of a `layers.<name>` table and of a
//!   `functions.<name>` table;
//! - `config.api`, `config.authorizer`, `config.route`: the keys of the
//!   `api` table, of its `authorizer` table, and of a route written as a
//!   table in a function's `routes`;
//! - `config.audit`, `config.audit_ignore`: the keys of the `audit` table
//!   and of one of its `ignore` entries;
//! - `manifest.top`, `manifest.layer`, `manifest.package`,
//!   `manifest.function`: the keys of `dist/manifest.json` at the top level,
//!   of a layer entry, of one of its `packages`, and of a function entry;
//! - `manifest.api`, `manifest.route`, `manifest.authorizer`: the keys of
//!   its `api`, of one of its `routes`, and of its `authorizer`.
//!
//! The table announced by `<!-- runtime-lifecycle -->` is not a list of
//! keys: its rows are every runtime of `facts::RUNTIMES` with its lifecycle
//! dates, which must be the code's.
//!
//! The configuration's keys are what `Table`'s getters were asked for while
//! parsing a maximal configuration (see `table::asked_log`); the manifest's
//! are those of a serialized `Manifest` with every optional field filled.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use serde_json::{json, Value};

use crate::config::manifest::{ApiEntry, AuthorizerEntry, Package, RouteEntry};
use crate::config::manifest::{
    FunctionEntry, ImageEntry, ImageLayerEntry, LayerEntry, LayerKind, Manifest, ZipFacts, PACKAGE_IMAGE,
    PACKAGE_ZIP,
};
use crate::config::{asked_log, Config, TABLE};
use crate::facts;
use crate::ground::utc::format_day;

const DESIGN: &str = include_str!("../../../docs/design.md");

/// The body rows (header and separator left out) of the table that
/// follows `marker`, a line of its own found exactly once in design.md.
fn table_after(marker: &str) -> Vec<&'static str> {
    let lines: Vec<&'static str> = DESIGN.lines().collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&index| lines[index].trim() == marker)
        .collect();
    assert_eq!(
        starts.len(),
        1,
        "docs/design.md must hold `{marker}` exactly once, on a line of its own"
    );
    let rows: Vec<&'static str> = lines[starts[0] + 1..]
        .iter()
        .map(|line| line.trim())
        .skip_while(|line| line.is_empty())
        .take_while(|line| line.starts_with('|'))
        .collect();
    assert!(
        rows.len() > 2,
        "docs/design.md: `{marker}` must be followed by a table (header, separator, one row at least)"
    );
    rows[2..].to_vec()
}

/// The keys the table announced by `<!-- keys: NAME -->` lists.
fn doc_keys(name: &str) -> BTreeSet<String> {
    let marker = format!("<!-- keys: {name} -->");
    let mut keys = BTreeSet::new();
    for row in table_after(&marker) {
        let first = row.split('|').nth(1).unwrap_or_default().trim();
        let key = first
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
            .filter(|key| !key.is_empty() && !key.contains('`'))
            .unwrap_or_else(|| {
                panic!(
                    "docs/design.md, table `{marker}`: the first column must be one key in backticks: {row}"
                )
            });
        assert!(
            keys.insert(key.to_string()),
            "docs/design.md, table `{marker}`: `{key}` is listed twice"
        );
    }
    keys
}

/// Fails with both differences, naming the table to edit.
fn assert_same(name: &str, code: &BTreeSet<String>, what: &str) {
    let doc = doc_keys(name);
    let undocumented: Vec<&String> = code.difference(&doc).collect();
    let unknown: Vec<&String> = doc.difference(code).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/design.md is out of step with {what} (table `<!-- keys: {name} -->`):\n  \
         in the code, not in the doc: {undocumented:?}\n  \
         in the doc, not in the code: {unknown:?}"
    );
}

fn object_keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

/// A configuration that sets every key, with values that pass validation.
fn maximal_configuration() -> Value {
    let mut value = json!({
        "runtime": "python3.11",
        "architecture": "arm64",
        "builder": "host",
        "image": "public.ecr.aws/sam/build-python3.11:latest-arm64",
        "image_base": "public.ecr.aws/lambda/python:3.11",
        "image_repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        "exclude": ["boto3", "botocore"],
        "bytecode": "checked-hash",
        "slim": true,
        "budget": "50 MiB",
        "import_budget": "3 s",
        "events": "lambdas/events",
        "memory": 256,
        "timeout": "10 s",
        "ephemeral_storage": 1024,
        "log_retention_days": 14,
        "environment": {"LOG_LEVEL": "INFO"},
        "remote_cache": "s3://layer-cache/ci",
        "remote_cache_mode": "read-only",
        "layers": {
            "core": {
                "requirements": "layers/core/requirements.txt",
                "allow": ["config.pem"],
            },
            "twilio": {
                "requirements": "layers/core/requirements.txt",
                "base": ["core"],
                "slim": false,
            },
            "shared": {
                "source": "lambdas/shared",
                "allow": [".env.example"],
            },
            "powertools": {
                "arn": "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-arm64:7",
                "unzipped_size": "80 MiB",
            },
        },
        "functions": {
            "sms": {
                "source": "lambdas/sms",
                "handler": "sms_handler.lambda_handler",
                "layers": ["core", "shared"],
                "budget": "40 MiB",
                "bundle": true,
                "allow": [".env.example"],
                "timeout": "15 s",
                "memory": 512,
                "ephemeral_storage": 2048,
                "environment": {"HTTP_TIMEOUT_SECONDS": "10"},
                "reserved_concurrency": 5,
                "log_retention_days": 30,
                "runtime": "python3.12",
                "architecture": "arm64",
                "routes": ["POST /sms/webhook", {"key": "GET /sms/health", "authorize": false}],
                "authorize": true,
            },
            "model": {
                "source": "lambdas/model",
                "handler": "model_handler.lambda_handler",
                "package": "image",
                "layers": ["core", "twilio", "shared"],
                "image_base": "public.ecr.aws/lambda/python:3.12",
                "image_repository": "127.0.0.1:5000/app",
            },
        },
        "audit": {
            "deny": "HIGH",
            "ignore": [{"id": "GHSA-xxxx-xxxx-xxxx", "reason": "not reachable", "until": "2027-01-31"}],
        },
        "api": {
            "payload_format": "2.0",
            "authorizer": {
                "function": "sms",
                "payload_format": "2.0",
                "response": "simple",
                "identity_sources": ["$request.header.Authorization"],
                "result_ttl": 300,
            },
        },
    });
    // Set apart: one more key in the literal is past `json!`'s recursion limit.
    value["allow_deprecated_runtime"] = json!(false);
    value["functions"]["sms"]["allow_deprecated_runtime"] = json!(true);
    // Apart: one json! of everything is past the macro's recursion limit.
    value["licenses"] = json!({"deny": ["AGPL-3.0-only"], "allow": ["MIT", "Apache-2.0"]});
    value["functions"]["sms"]["licenses"] = json!({"deny": ["GPL-3.0-only"]});
    value
}

#[test]
fn design_doc_lists_every_configuration_key() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("layers/core")).unwrap();
    fs::write(root.path().join("layers/core/requirements.txt"), "requests\n").unwrap();
    fs::create_dir_all(root.path().join("lambdas/shared")).unwrap();
    fs::create_dir_all(root.path().join("lambdas/sms")).unwrap();
    fs::create_dir_all(root.path().join("lambdas/model")).unwrap();
    fs::create_dir_all(root.path().join("lambdas/events")).unwrap();
    let value = maximal_configuration();

    asked_log::take();
    Config::from_value(root.path(), &value).expect("the maximal configuration is valid");
    let finished = asked_log::take();

    // (asked by the code, set by the maximal configuration) per kind of table.
    let mut global: (BTreeSet<String>, BTreeSet<String>) = Default::default();
    let mut layer = global.clone();
    let mut function = global.clone();
    let mut api = global.clone();
    let mut authorizer = global.clone();
    let mut route = global.clone();
    let mut audit = global.clone();
    let mut audit_ignore = global.clone();
    let mut licenses = global.clone();
    for (key, asked) in finished {
        let (slot, set) = if key == TABLE {
            (&mut global, &value)
        } else if key == format!("{TABLE}.api") {
            (&mut api, &value["api"])
        } else if key == format!("{TABLE}.api.authorizer") {
            (&mut authorizer, &value["api"]["authorizer"])
        } else if key == format!("{TABLE}.audit") {
            (&mut audit, &value["audit"])
        } else if let Some(at) = key
            .strip_prefix(&format!("{TABLE}.audit.ignore["))
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let at: usize = at.parse().expect("an ignore's index");
            (&mut audit_ignore, &value["audit"]["ignore"][at])
        } else if key == format!("{TABLE}.licenses") {
            (&mut licenses, &value["licenses"])
        } else if let Some(name) = key
            .strip_prefix(&format!("{TABLE}.functions."))
            .and_then(|rest| rest.strip_suffix(".licenses"))
        {
            (&mut licenses, &value["functions"][name]["licenses"])
        } else if let Some(name) = key.strip_prefix(&format!("{TABLE}.layers.")) {
            (&mut layer, &value["layers"][name])
        } else if let Some((name, at)) = key
            .strip_prefix(&format!("{TABLE}.functions."))
            .and_then(|rest| rest.strip_suffix(']')?.split_once(".routes["))
        {
            let at: usize = at.parse().expect("a route's index");
            (&mut route, &value["functions"][name]["routes"][at])
        } else if let Some(name) = key.strip_prefix(&format!("{TABLE}.functions.")) {
            (&mut function, &value["functions"][name])
        } else {
            panic!("a table this test does not know: {key}")
        };
        slot.0.extend(asked);
        slot.1.extend(object_keys(set));
    }
    for (name, (asked, set)) in [
        ("config.global", &global),
        ("config.layer", &layer),
        ("config.function", &function),
        ("config.api", &api),
        ("config.authorizer", &authorizer),
        ("config.route", &route),
        ("config.audit", &audit),
        ("config.audit_ignore", &audit_ignore),
        ("config.licenses", &licenses),
    ] {
        assert!(!asked.is_empty(), "no `{name}` table was parsed");
        assert_same(name, asked, "the configuration keys the code reads");
        // Keeps the configuration above maximal, so that it reaches a getter
        // placed after another key's check: a new key must be set there too.
        let unset: Vec<&String> = asked.difference(set).collect();
        assert!(
            unset.is_empty(),
            "set {unset:?} in maximal_configuration() ({name}) so that it reaches every getter"
        );
    }
}

#[test]
fn design_doc_lists_every_manifest_key() {
    let zip = |path: &str| ZipFacts {
        zip: path.to_string(),
        sha256: "00".repeat(32),
        base64sha256: "AAAA".to_string(),
        zipped_bytes: 10,
        unzipped_bytes: 20,
        files: 3,
    };
    let mut manifest = Manifest {
        runtime: "python3.11".to_string(),
        architecture: "x86_64".to_string(),
        ..Manifest::default()
    };
    // Field by field, so that a field added to an entry stops this test from
    // compiling until it is filled here (and, so, listed in the doc).
    manifest.layers.insert(
        "core".to_string(),
        LayerEntry {
            kind: LayerKind::Requirements,
            zip: Some("dist/layers/core.zip".to_string()),
            sha256: Some("00".repeat(32)),
            base64sha256: Some("AAAA".to_string()),
            zipped_bytes: Some(10),
            unzipped_bytes: 20,
            files: Some(3),
            packages: vec![Package {
                name: "requests".to_string(),
                version: "2.32.3".to_string(),
                unzipped_bytes: 20,
                top_level: vec!["requests".to_string()],
                requires: vec!["urllib3".to_string()],
                license: Some("MIT".to_string()),
            }],
            excluded: Some(vec!["boto3==1.34.0".to_string()]),
            builder: Some("host".to_string()),
            installer: Some("uv 0.13.9".to_string()),
            bytecode: Some("sourceless".to_string()),
            slim: Some(true),
            cache_key: Some("11".repeat(32)),
            input_sha256: Some("11".repeat(32)),
            arn: None,
            runtimes: vec!["python3.11".to_string()],
            architectures: vec!["x86_64".to_string()],
            upload: Some("direct".to_string()),
        },
    );
    manifest.layers.insert(
        "shared".to_string(),
        LayerEntry::built(LayerKind::Source, zip("dist/layers/shared.zip"), "22".repeat(32)),
    );
    manifest.layers.insert(
        "powertools".to_string(),
        LayerEntry::external(
            "arn:aws:lambda:us-east-1:017000801446:layer:Powertools:7",
            83_886_080,
        ),
    );
    manifest.functions.insert(
        "sms".to_string(),
        FunctionEntry {
            zip: zip("dist/functions/sms.zip"),
            handler: "sms_handler.lambda_handler".to_string(),
            runtime: "python3.12".to_string(),
            architecture: "arm64".to_string(),
            layers: vec!["powertools".to_string()],
            bundled: vec!["core".to_string(), "shared".to_string()],
            upload: "direct".to_string(),
            input_sha256: "33".repeat(32),
            memory_mb: 512,
            timeout_s: 15,
            ephemeral_storage_mb: 512,
            environment: BTreeMap::from([("LOG_LEVEL".to_string(), "INFO".to_string())]),
            reserved_concurrency: Some(10),
            log_retention_days: 14,
            package_type: PACKAGE_ZIP.to_string(),
            image: None,
        },
    );
    let image_layer = |name: &str| ImageLayerEntry {
        name: name.to_string(),
        digest: format!("sha256:{}", "44".repeat(32)),
        compressed_bytes: 10,
        unpacked_bytes: 20,
    };
    manifest.functions.insert(
        "model".to_string(),
        FunctionEntry {
            layers: Vec::new(),
            bundled: Vec::new(),
            package_type: PACKAGE_IMAGE.to_string(),
            image: Some(ImageEntry {
                base: format!("public.ecr.aws/lambda/python@sha256:{}", "55".repeat(32)),
                digest: format!("sha256:{}", "66".repeat(32)),
                layout: "dist/images/model".to_string(),
                repository: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/app/model".to_string()),
                uri: Some(format!(
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com/app/model@sha256:{}",
                    "66".repeat(32)
                )),
                unpacked_bytes: 60,
                compressed_bytes: 30,
                layers: vec![image_layer("base"), image_layer("core"), image_layer("function")],
            }),
            ..manifest.functions["sms"].clone()
        },
    );

    manifest.api = ApiEntry {
        payload_format_version: "1.0".to_string(),
        routes: BTreeMap::from([(
            "GET /users/{user_id}".to_string(),
            RouteEntry {
                function: "users".to_string(),
                authorize: true,
            },
        )]),
        authorizer: Some(AuthorizerEntry {
            function: "authorizer".to_string(),
            payload_format_version: "2.0".to_string(),
            enable_simple_responses: true,
            identity_sources: vec!["$request.header.Authorization".to_string()],
            result_ttl_in_seconds: 300,
        }),
    };

    let value = serde_json::to_value(&manifest).unwrap();
    let entries = |name: &str| -> Vec<Value> {
        value[name]
            .as_object()
            .expect("a map of entries")
            .values()
            .cloned()
            .collect()
    };
    let union = |values: &[Value]| -> BTreeSet<String> { values.iter().flat_map(object_keys).collect() };
    let layers = entries("layers");
    let packages: Vec<Value> = layers
        .iter()
        .filter_map(|layer| layer.get("packages")?.as_array().cloned())
        .flatten()
        .collect();
    assert!(!packages.is_empty(), "the requirements layer lists its packages");

    assert_same(
        "manifest.top",
        &object_keys(&value),
        "dist/manifest.json's top level",
    );
    assert_same(
        "manifest.layer",
        &union(&layers),
        "a layer entry of dist/manifest.json",
    );
    assert_same(
        "manifest.package",
        &union(&packages),
        "a package of a layer entry",
    );
    assert_same(
        "manifest.function",
        &union(&entries("functions")),
        "a function entry of dist/manifest.json",
    );
    let images: Vec<Value> = entries("functions")
        .iter()
        .filter_map(|function| function.get("image").cloned())
        .collect();
    assert_same("manifest.image", &union(&images), "an image function's image");
    let image_layers: Vec<Value> = images
        .iter()
        .filter_map(|image| image.get("layers")?.as_array().cloned())
        .flatten()
        .collect();
    assert_same(
        "manifest.image_layer",
        &union(&image_layers),
        "a layer of an image",
    );
    assert_same(
        "manifest.api",
        &object_keys(&value["api"]),
        "dist/manifest.json's api",
    );
    let routes: Vec<Value> = value["api"]["routes"]
        .as_object()
        .expect("a map of routes")
        .values()
        .cloned()
        .collect();
    assert_same("manifest.route", &union(&routes), "a route of the api");
    assert_same(
        "manifest.authorizer",
        &object_keys(&value["api"]["authorizer"]),
        "the api's authorizer",
    );
}

/// The rows of the table announced by `<!-- NAME -->`, each a list of its
/// cells without the backticks around them.
fn doc_rows(marker: &str) -> Vec<Vec<String>> {
    table_after(&format!("<!-- {marker} -->"))
        .into_iter()
        .map(|row| {
            row.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

#[test]
fn design_doc_lists_every_runtime_lifecycle_date() {
    let date = |date: Option<facts::Day>| date.map_or_else(|| "not published".to_string(), format_day);
    let code: Vec<Vec<String>> = facts::RUNTIMES
        .iter()
        .map(|runtime| {
            vec![
                runtime.name.to_string(),
                date(runtime.lifecycle.deprecation),
                date(runtime.lifecycle.block_create),
                date(runtime.lifecycle.block_update),
            ]
        })
        .collect();
    assert_eq!(
        doc_rows("runtime-lifecycle"),
        code,
        "docs/design.md's runtime lifecycle table (`<!-- runtime-lifecycle -->`) differs from facts::RUNTIMES"
    );
    let read = format!("Read on {}.", format_day(facts::RUNTIME_LIFECYCLE_READ));
    assert!(
        DESIGN.contains(&read),
        "docs/design.md must say when AWS's table was read: {read:?}"
    );
}
