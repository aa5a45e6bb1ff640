//! What the emulated API holds after the apply, read by xtask/py/deployed.py,
//! against dist/manifest.json: each function's configuration, concurrency,
//! log group and layers in order (an image function: its package type and
//! image URI, and its ECR repository), and the HTTP API's access log,
//! routes, integrations and authorizer.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use super::moto::run_python;
use super::NAME_PREFIX;

/// Reads the emulated API's state as one JSON document.
const SCRIPT: &str = include_str!("../../../py/deployed.py");

/// xtask/py/deployed.py against the endpoint, parsed.
pub(super) fn read_deployed(python: &Path, endpoint: &str) -> Result<Value> {
    let stdout =
        run_python(python, SCRIPT, &[endpoint, NAME_PREFIX]).context("running xtask/py/deployed.py")?;
    serde_json::from_slice(&stdout).context("reading what xtask/py/deployed.py printed")
}

/// One way the emulated API differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// What differs: "function `<manifest name>`" (the deployed name for a
    /// function the manifest does not have), or "HTTP API `<name>`".
    pub subject: String,
    pub field: String,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            out,
            "{}: {}: expected {}, found {}",
            self.subject, self.field, self.expected, self.found
        )
    }
}

/// All differences as one message.
pub fn report(differences: &[Difference]) -> String {
    let mut text = format!(
        "the emulated AWS API differs from dist/manifest.json in {} place(s):",
        differences.len()
    );
    for difference in differences {
        text.push_str("\n  ");
        text.push_str(&difference.to_string());
    }
    text
}

/// What `deployed` (the document xtask/py/deployed.py prints) holds that
/// `manifest` (dist/manifest.json) does not say, for the functions named
/// `<prefix>-<manifest name>`.
pub fn differences(manifest: &Value, deployed: &Value, prefix: &str) -> Vec<Difference> {
    let mut found = Vec::new();
    let empty = serde_json::Map::new();
    let functions = manifest["functions"].as_object().unwrap_or(&empty);
    let deployed_functions = deployed["functions"].as_object().unwrap_or(&empty);
    for (name, entry) in functions {
        let deployed_name = format!("{prefix}-{name}");
        let mut check = Checker {
            function: name,
            found: &mut found,
        };
        let Some(function) = deployed_functions.get(&deployed_name) else {
            check.push(
                "function",
                format!("deployed as {deployed_name}"),
                "no such function".into(),
            );
            continue;
        };
        let image = entry["package_type"] == "Image";
        if image {
            check.image(entry, function, &deployed["repositories"]);
        } else {
            check.configuration(entry, &function["configuration"]);
        }
        check.settings(entry, &function["configuration"]);
        check.concurrency_and_logs(entry, function, &deployed_name);
        if !image {
            check.layers(manifest, entry, function, prefix);
        }
    }
    for deployed_name in deployed_functions.keys() {
        let name = deployed_name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .unwrap_or(deployed_name);
        if !functions.contains_key(name) {
            found.push(Difference {
                subject: format!("function `{deployed_name}`"),
                field: "function".into(),
                expected: "no such function (dist/manifest.json has none of that name)".into(),
                found: "a deployed function".into(),
            });
        }
    }
    access_log(manifest, &deployed["api"], prefix, &mut found);
    if !deployed["api"].is_null() {
        ApiChecker::new(prefix, &deployed["api"], &mut found).check(manifest);
    }
    found
}

/// The HTTP API's routes, the functions their integrations invoke, and
/// the authorizer, against the manifest's `api` (Cargo.toml's).
struct ApiChecker<'a> {
    subject: String,
    prefix: &'a str,
    api: &'a Value,
    found: &'a mut Vec<Difference>,
}

impl<'a> ApiChecker<'a> {
    fn new(prefix: &'a str, api: &'a Value, found: &'a mut Vec<Difference>) -> ApiChecker<'a> {
        ApiChecker {
            subject: format!("HTTP API `{prefix}-api`"),
            prefix,
            api,
            found,
        }
    }

    fn push(&mut self, field: &str, expected: String, found: String) {
        self.found.push(Difference {
            subject: self.subject.clone(),
            field: field.to_string(),
            expected,
            found,
        });
    }

    fn check(mut self, manifest: &Value) {
        let Some(expected) = manifest.get("api") else {
            return self.push(
                "api",
                "`api` in dist/manifest.json".into(),
                "no such key (a manifest from before it existed?)".into(),
            );
        };
        let empty = serde_json::Map::new();
        let routes = expected["routes"].as_object().unwrap_or(&empty);
        let deployed = self.api["routes"].as_object().unwrap_or(&empty);
        let authorized = routes.values().any(|route| route["authorize"] == true);
        let authorizer_id = self.authorizer(&expected["authorizer"], authorized);
        for (key, route) in routes {
            let field = format!("route `{key}`");
            let function = route["function"].as_str().unwrap_or_default();
            let Some(found) = deployed.get(key) else {
                self.push(&field, format!("to invoke `{function}`"), "no such route".into());
                continue;
            };
            let integration = found["target"]
                .as_str()
                .and_then(|target| target.strip_prefix("integrations/"))
                .map(|id| &self.api["integrations"][id])
                .unwrap_or(&Value::Null);
            if integration.is_null() {
                self.push(
                    &format!("{field} target"),
                    "an integration".into(),
                    show(&found["target"]),
                );
            } else {
                self.invokes(&format!("{field} integration"), function, &integration["uri"]);
                let format = &integration["payload_format_version"];
                if format != &expected["payload_format_version"] {
                    self.push(
                        &format!("{field} integration payload format"),
                        show(&expected["payload_format_version"]),
                        show(format),
                    );
                }
            }
            let (kind, authorizer) = if route["authorize"] == true {
                ("CUSTOM", authorizer_id.clone().map_or(Value::Null, Value::String))
            } else {
                ("NONE", Value::Null)
            };
            let found_kind = found["authorization_type"].as_str().unwrap_or("NONE");
            if found_kind != kind || found["authorizer_id"] != authorizer {
                let describe = |kind: &str, authorizer: &Value| match authorizer {
                    Value::Null => kind.to_string(),
                    id => format!("{kind} by authorizer {id}"),
                };
                self.push(
                    &format!("{field} authorization"),
                    describe(kind, &authorizer),
                    describe(found_kind, &found["authorizer_id"]),
                );
            }
        }
        for key in deployed.keys().filter(|key| !routes.contains_key(*key)) {
            self.push(
                &format!("route `{key}`"),
                "no such route (dist/manifest.json has none)".into(),
                "a deployed route".into(),
            );
        }
    }

    /// The deployed authorizer against the manifest's (whose routes
    /// authorize some, or none); its id when there is one.
    fn authorizer(&mut self, expected: &Value, expected_routes_authorized: bool) -> Option<String> {
        let empty = serde_json::Map::new();
        let api = self.api;
        let deployed = api["authorizers"].as_object().unwrap_or(&empty);
        if expected.is_null() {
            if !deployed.is_empty() {
                self.push(
                    "authorizer",
                    "none (dist/manifest.json has none)".into(),
                    format!("{} deployed", deployed.len()),
                );
            }
            return None;
        }
        // Only the authorizers the routes name are read (xtask/py/deployed.py):
        // one no route uses is not seen.
        if deployed.is_empty() && !expected_routes_authorized {
            return None;
        }
        let mut found = deployed.iter();
        let (Some((id, authorizer)), None) = (found.next(), found.next()) else {
            self.push("authorizer", "one".into(), format!("{} deployed", deployed.len()));
            return None;
        };
        let function = expected["function"].as_str().unwrap_or_default();
        self.invokes("authorizer", function, &authorizer["uri"]);
        if authorizer["type"] != "REQUEST" {
            self.push("authorizer type", "\"REQUEST\"".into(), show(&authorizer["type"]));
        }
        for (field, expected, found) in [
            (
                "payload format",
                expected["payload_format_version"].clone(),
                authorizer["payload_format_version"].clone(),
            ),
            // API Gateway leaves the setting unset with payload format 1.0.
            (
                "simple responses",
                expected["enable_simple_responses"].clone(),
                Value::Bool(authorizer["enable_simple_responses"] == true),
            ),
            // No identity source is no list at all.
            (
                "identity sources",
                expected["identity_sources"].clone(),
                match &authorizer["identity_sources"] {
                    Value::Null => Value::Array(Vec::new()),
                    sources => sources.clone(),
                },
            ),
            (
                "result TTL (s)",
                expected["result_ttl_in_seconds"].clone(),
                authorizer["result_ttl_in_seconds"].clone(),
            ),
        ] {
            if expected != found {
                self.push(&format!("authorizer {field}"), show(&expected), show(&found));
            }
        }
        Some(id.clone())
    }

    /// An invoke ARN (`arn:aws:apigateway:…:lambda:path/2015-03-31/functions/
    /// arn:aws:lambda:…:function:<name>/invocations`) of the deployed
    /// `<prefix>-<function>`.
    fn invokes(&mut self, field: &str, function: &str, uri: &Value) {
        let wanted = format!("{}-{function}", self.prefix);
        let name = uri
            .as_str()
            .and_then(|uri| uri.split(":function:").nth(1))
            .and_then(|rest| rest.split(['/', ':']).next());
        if name != Some(wanted.as_str()) {
            self.push(&format!("{field} function"), wanted, show(uri));
        }
    }
}

/// The HTTP API's access log against the manifest's top-level
/// `log_retention_days` (Cargo.toml's): the stage logs to a log group that
/// keeps its logs that long.
fn access_log(manifest: &Value, api: &Value, prefix: &str, found: &mut Vec<Difference>) {
    let subject = format!("HTTP API `{prefix}-api`");
    let mut push = |field: &str, expected: String, found_here: String| {
        found.push(Difference {
            subject: subject.clone(),
            field: field.to_string(),
            expected,
            found: found_here,
        });
    };
    if api.is_null() {
        return push("API", "to exist".into(), "no such API".into());
    }
    let settings = &api["access_log"];
    let Some(group_name) = settings["log_group_name"].as_str() else {
        return push("$default stage access log", "to be on".into(), show(settings));
    };
    let log_group = format!("access log group {group_name}");
    let Some(group) = settings["log_group"].as_object() else {
        return push(&log_group, "to exist".into(), "no such log group".into());
    };
    let Some(days) = manifest.get("log_retention_days") else {
        return push(
            "log_retention_days",
            "`log_retention_days` at the top of dist/manifest.json".into(),
            "no such key (a manifest from before it existed?)".into(),
        );
    };
    // 0 = never expire: the group has no retention.
    let expected = if days == 0 { Value::Null } else { days.clone() };
    let retention = group.get("retention_in_days").unwrap_or(&Value::Null);
    if &expected != retention {
        push(
            &format!("{log_group} retention (days)"),
            show(&expected),
            show(retention),
        );
    }
}

/// Collects one function's differences.
struct Checker<'a> {
    function: &'a str,
    found: &'a mut Vec<Difference>,
}

impl Checker<'_> {
    fn push(&mut self, field: &str, expected: String, found: String) {
        self.found.push(Difference {
            subject: format!("function `{}`", self.function),
            field: field.to_string(),
            expected,
            found,
        });
    }

    /// The manifest's `expected` (None: the manifest lacks the key) against
    /// what the API holds.
    fn equal(&mut self, field: &str, expected: Option<&Value>, found: &Value) {
        match expected {
            Some(expected) if expected == found => {}
            Some(expected) => self.push(field, show(expected), show(found)),
            None => self.push(
                field,
                "a value from dist/manifest.json, which has none".into(),
                show(found),
            ),
        }
    }

    fn missing_key(&mut self, key: &str) {
        self.push(
            key,
            format!("`{key}` in dist/manifest.json"),
            "no such key (a manifest from before it existed?)".into(),
        );
    }

    /// A ZIP function's code: its handler, runtime and ZIP.
    fn configuration(&mut self, entry: &Value, configuration: &Value) {
        // A manifest from before images, and a reader from before them,
        // say nothing: a ZIP function.
        if !configuration["PackageType"].is_null() {
            self.equal("PackageType", Some(&"Zip".into()), &configuration["PackageType"]);
        }
        self.equal("Handler", entry.get("handler"), &configuration["Handler"]);
        self.equal("Runtime", entry.get("runtime"), &configuration["Runtime"]);
        self.equal(
            "CodeSha256",
            entry.get("base64sha256"),
            &configuration["CodeSha256"],
        );
        self.equal("CodeSize", entry.get("zipped_bytes"), &configuration["CodeSize"]);
    }

    /// An image function's code: the pushed image by digest, nothing of a
    /// ZIP function's (handler, runtime, layers: the image holds them), in
    /// an ECR repository as terraform/modules/ecr makes it.
    fn image(&mut self, entry: &Value, function: &Value, repositories: &Value) {
        let configuration = &function["configuration"];
        self.equal(
            "PackageType",
            Some(&"Image".into()),
            &configuration["PackageType"],
        );
        let uri = &entry["image"]["uri"];
        if uri.is_null() {
            return self.push(
                "image.uri",
                "the pushed image's uri in dist/manifest.json".into(),
                "none (not pushed)".into(),
            );
        }
        self.equal("ImageUri", Some(uri), &function["image_uri"]);
        for key in ["Handler", "Runtime"] {
            if !configuration[key].is_null() && configuration[key] != "" {
                self.push(key, "none (an image function)".into(), show(&configuration[key]));
            }
        }
        if let Some(layers) = function["layers"].as_array().filter(|layers| !layers.is_empty()) {
            self.push(
                "Layers",
                "none (an image function)".into(),
                format!("{} attached", layers.len()),
            );
        }
        // <registry host>/<repository name>
        let name = entry["image"]["repository"]
            .as_str()
            .and_then(|repository| repository.split_once('/'))
            .map_or("", |(_, name)| name);
        let field = format!("ECR repository `{name}`");
        let Some(repository) = repositories.get(name) else {
            return self.push(&field, "to exist".into(), "no such repository".into());
        };
        self.equal(
            &format!("{field} tag mutability"),
            Some(&"IMMUTABLE".into()),
            &repository["tag_mutability"],
        );
        self.equal(
            &format!("{field} scan on push"),
            Some(&true.into()),
            &repository["scan_on_push"],
        );
        let rule = &repository["lifecycle_policy"]["rules"][0];
        if rule["selection"]["countType"] != "imageCountMoreThan" || rule["action"]["type"] != "expire" {
            self.push(
                &format!("{field} lifecycle policy"),
                "to expire all but the last images pushed".into(),
                show(&repository["lifecycle_policy"]),
            );
        }
    }

    /// What every function is deployed with, ZIP or image.
    fn settings(&mut self, entry: &Value, configuration: &Value) {
        let architectures = entry
            .get("architecture")
            .map(|architecture| Value::Array(vec![architecture.clone()]));
        self.equal(
            "Architectures",
            architectures.as_ref(),
            &configuration["Architectures"],
        );
        self.equal("MemorySize", entry.get("memory_mb"), &configuration["MemorySize"]);
        self.equal("Timeout", entry.get("timeout_s"), &configuration["Timeout"]);
        self.equal(
            "EphemeralStorage.Size",
            entry.get("ephemeral_storage_mb"),
            &configuration["EphemeralStorage"]["Size"],
        );
        match entry.get("environment").map(Value::as_object) {
            Some(Some(variables)) => {
                for (key, value) in variables {
                    self.equal(
                        &format!("Environment.Variables.{key}"),
                        Some(value),
                        &configuration["Environment"]["Variables"][key],
                    );
                }
            }
            Some(None) => self.push(
                "environment",
                "an object in dist/manifest.json".into(),
                show(&entry["environment"]),
            ),
            None => self.missing_key("environment"),
        }
    }

    /// The reserved concurrency and the retention of the function's log group.
    fn concurrency_and_logs(&mut self, entry: &Value, function: &Value, deployed_name: &str) {
        // Absent means no reserved concurrency: GetFunctionConcurrency has none.
        self.equal(
            "reserved concurrency",
            Some(entry.get("reserved_concurrency").unwrap_or(&Value::Null)),
            &function["reserved_concurrency"],
        );
        let log_group = format!("log group /aws/lambda/{deployed_name}");
        match (entry.get("log_retention_days"), function["log_group"].as_object()) {
            (_, None) => self.push(&log_group, "to exist".into(), "no such log group".into()),
            (None, Some(_)) => self.missing_key("log_retention_days"),
            (Some(days), Some(group)) => {
                // 0 = never expire: the group has no retention.
                let expected = if days == 0 { Value::Null } else { days.clone() };
                let retention = group.get("retention_in_days").unwrap_or(&Value::Null);
                self.equal(
                    &format!("{log_group} retention (days)"),
                    Some(&expected),
                    retention,
                );
            }
        }
    }

    /// The deployed layers, in order, against the manifest's: a built
    /// layer's version holds its ZIP (hash and size) under its Terraform
    /// name; an external layer is its ARN.
    fn layers(&mut self, manifest: &Value, entry: &Value, function: &Value, prefix: &str) {
        let no_layers = Vec::new();
        let expected = entry["layers"].as_array().unwrap_or(&no_layers);
        let deployed = function["layers"].as_array().unwrap_or(&no_layers);
        for index in 0..expected.len().max(deployed.len()) {
            let name = expected.get(index).and_then(Value::as_str);
            let field = match name {
                Some(name) => format!("Layers[{index}] ({name})"),
                None => format!("Layers[{index}]"),
            };
            let Some(layer) = deployed.get(index) else {
                self.push(
                    &field,
                    format!("layer `{}`", name.unwrap_or("?")),
                    "no layer".into(),
                );
                continue;
            };
            let arn = layer["arn"].as_str().unwrap_or_default();
            let Some(name) = name else {
                self.push(
                    &field,
                    "no layer (dist/manifest.json lists fewer)".into(),
                    arn.to_string(),
                );
                continue;
            };
            let Some(layer_entry) = manifest["layers"].get(name) else {
                self.push(
                    &field,
                    format!("layer `{name}` in dist/manifest.json's layers"),
                    "none".into(),
                );
                continue;
            };
            if layer_entry["kind"] == "external" {
                self.equal(&format!("{field} ARN"), layer_entry.get("arn"), &layer["arn"]);
                continue;
            }
            let wanted_name = format!("{prefix}-{}", name.replace('@', "-").replace('.', ""));
            // arn:aws:lambda:<region>:<account>:layer:<name>:<version>
            let deployed_name = arn.split(':').nth(6).unwrap_or_default();
            if deployed_name != wanted_name {
                self.push(
                    &format!("{field} layer name"),
                    wanted_name,
                    format!("{deployed_name} ({arn})"),
                );
            }
            if layer["content"].is_null() {
                let why = layer["error"].as_str().unwrap_or("no content");
                self.push(
                    &format!("{field} content"),
                    "a readable layer version".into(),
                    format!("{arn}: {why}"),
                );
                continue;
            }
            self.equal(
                &format!("{field} CodeSha256"),
                layer_entry.get("base64sha256"),
                &layer["content"]["CodeSha256"],
            );
            self.equal(
                &format!("{field} CodeSize"),
                layer_entry.get("zipped_bytes"),
                &layer["content"]["CodeSize"],
            );
        }
    }
}

/// A JSON value as the report shows it: null as "none".
fn show(value: &Value) -> String {
    match value {
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}
