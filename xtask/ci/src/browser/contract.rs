//! What the report must say, held against what the page says.
//!
//! The DOM contract the generator keeps: `<main id="report"
//! data-functions="N">`; per manifest function, in name order, `<section
//! class="function" id="function-NAME" data-function="NAME"
//! data-total-bytes="T" data-limit-bytes=".." data-budget-bytes="B or empty">`
//! holding an `<svg class="treemap">` and a table whose `<tr
//! data-part="function|layer" data-name=".." data-bytes="..">` rows (its own
//! code, then each attached layer in order) sum to T; a `<section
//! id="changes">`.
//!
//! Every function's expected figures come from the manifest and
//! `check-limits --json`; every disagreement is named with the function,
//! the attribute, what was expected and what was found.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};

use xtask::config::manifest::Manifest;
use xtask::facts::MAX_UNZIPPED_BYTES;

use super::page::{Attributes, FunctionSection, Page};

/// What the report must say of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedFunction {
    /// check-limits' `total_unzipped_bytes`.
    pub total: u64,
    /// check-limits' `budget_bytes`.
    pub budget: Option<u64>,
    /// The manifest's `unzipped_bytes` of the function's own ZIP.
    pub own: u64,
    /// The manifest's attached layers, in order, with their `unzipped_bytes`.
    pub layers: Vec<(String, u64)>,
    /// Where its runtime stands today (`lifecycle::Status::name`), which
    /// the page's script works out from the dates in the browser; `None`
    /// for a runtime the tool has no dates for.
    pub status: Option<&'static str>,
}

/// Every manifest function's figures, with check-limits' total and budget.
pub(super) fn expected(
    manifest: &Manifest,
    limits: &serde_json::Value,
) -> Result<BTreeMap<String, ExpectedFunction>> {
    let mut expected = BTreeMap::new();
    let today = real_today();
    for (name, entry) in &manifest.functions {
        let report = &limits["functions"][name];
        let Some(total) = report["total_unzipped_bytes"].as_u64() else {
            bail!("check-limits --json has no total_unzipped_bytes for function `{name}`");
        };
        let mut layers = Vec::new();
        for layer in &entry.layers {
            let bytes = manifest
                .layers
                .get(layer)
                .map(|built| built.unzipped_bytes)
                .with_context(|| format!("function `{name}`: layer `{layer}` is not in the manifest"))?;
            layers.push((layer.clone(), bytes));
        }
        expected.insert(
            name.clone(),
            ExpectedFunction {
                total,
                budget: report["budget_bytes"].as_u64(),
                own: entry.zip.unzipped_bytes,
                layers,
                status: runtime_status(&entry.runtime, today),
            },
        );
    }
    Ok(expected)
}

/// Today's UTC date by the clock, as the browser reads it (not
/// `XTASK_TODAY`, which only the tool reads).
fn real_today() -> xtask::facts::Day {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let now = xtask::ground::utc::Utc::from_unix(seconds);
    (now.year as u16, now.month as u8, now.day as u8)
}

/// Where `runtime` stands on `day`, by the tool's own rule.
pub fn runtime_status(runtime: &str, day: xtask::facts::Day) -> Option<&'static str> {
    let runtime = xtask::facts::Runtime::find(runtime)?;
    Some(xtask::config::lifecycle::status(&runtime.lifecycle, day).name())
}

/// The page held against what it must say; every disagreement, each naming
/// the function, the attribute, what was expected and what was found.
pub fn compare(page: &Page, expected: &BTreeMap<String, ExpectedFunction>) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let Some(main) = &page.main else {
        return Err(vec![
            "no <main id=\"report\">: not the report, or it did not load".to_string(),
        ]);
    };
    let count = expected.len().to_string();
    let found = main.get("data-functions").map_or("nothing", String::as_str);
    if found != count {
        errors.push(format!(
            "<main id=\"report\">: data-functions: expected {count} (the manifest's functions), found {found}"
        ));
    }

    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for section in &page.sections {
        let Some(name) = section.attributes.get("data-function") else {
            errors.push("a <section class=\"function\"> without data-function".to_string());
            continue;
        };
        order.push(name.clone());
        if !seen.insert(name.clone()) {
            errors.push(format!(
                "function `{name}`: more than one <section class=\"function\">"
            ));
            continue;
        }
        match expected.get(name) {
            Some(function) => compare_function(name, section, function, &mut errors),
            None => errors.push(format!(
                "function `{name}`: a <section class=\"function\"> for a function the manifest does not have"
            )),
        }
    }
    for name in expected.keys() {
        if !seen.contains(name) {
            errors.push(format!(
                "function `{name}`: no <section class=\"function\" data-function=\"{name}\">"
            ));
        }
    }
    let mut sorted = order.clone();
    sorted.sort();
    if order != sorted {
        errors.push(format!(
            "the function sections: expected name order {sorted:?}, found {order:?}"
        ));
    }
    if !page.changes {
        errors.push("no <section id=\"changes\"> (the comparison with the previous build)".to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn compare_function(
    name: &str,
    section: &FunctionSection,
    function: &ExpectedFunction,
    errors: &mut Vec<String>,
) {
    compare_attributes(name, section, function, errors);
    if !section.treemap {
        errors.push(format!("function `{name}`: no <svg class=\"treemap\">"));
    }
    compare_rows(name, section, function, errors);
    if let Some(status) = function.status {
        let found = section
            .lifecycle
            .as_ref()
            .map(|p| p.get("data-status").map_or("no data-status", String::as_str));
        match found {
            Some(found) if found == status => {}
            Some(found) => errors.push(format!(
                "function `{name}`: <p class=\"lifecycle\"> data-status: expected {status} (the tool's rule on today's date), found {found}"
            )),
            None => errors.push(format!("function `{name}`: no <p class=\"lifecycle\">")),
        }
    }
}

/// The section's own attributes: its id, the total, the limit and the budget.
fn compare_attributes(
    name: &str,
    section: &FunctionSection,
    function: &ExpectedFunction,
    errors: &mut Vec<String>,
) {
    let attribute = |key: &str| section.attributes.get(key).map(String::as_str);
    let mut expect = |key: &str, expected: &str, source: &str| {
        let found = attribute(key);
        if found != Some(expected) {
            let found = found.map_or("nothing".to_string(), |value| format!("\"{value}\""));
            errors.push(format!(
                "function `{name}`: {key}: expected \"{expected}\" ({source}), found {found}"
            ));
        }
    };
    expect("id", &format!("function-{name}"), "the contract");
    expect(
        "data-total-bytes",
        &function.total.to_string(),
        "check-limits' total_unzipped_bytes",
    );
    expect(
        "data-limit-bytes",
        &MAX_UNZIPPED_BYTES.to_string(),
        "Lambda's limit",
    );
    expect(
        "data-budget-bytes",
        &function
            .budget
            .map(|budget| budget.to_string())
            .unwrap_or_default(),
        "check-limits' budget_bytes",
    );
}

/// `function `auth``, `layer `core``: a row as the errors name it.
fn describe(row: &Attributes) -> String {
    format!(
        "{} `{}`",
        row.get("data-part").map_or("", String::as_str),
        row.get("data-name").map_or("", String::as_str)
    )
}

/// The table's function and layer rows: the function's own, then each
/// layer's, as the manifest has them, each of its bytes, summing to the total.
fn compare_rows(
    name: &str,
    section: &FunctionSection,
    function: &ExpectedFunction,
    errors: &mut Vec<String>,
) {
    let mut wanted = vec![("function", name.to_string(), function.own)];
    wanted.extend(
        function
            .layers
            .iter()
            .map(|(layer, bytes)| ("layer", layer.clone(), *bytes)),
    );
    let rows: Vec<&Attributes> = section
        .rows
        .iter()
        .filter(|row| {
            matches!(
                row.get("data-part").map(String::as_str),
                Some("function" | "layer")
            )
        })
        .collect();
    let found_parts: Vec<String> = rows.iter().map(|row| describe(row)).collect();
    let wanted_parts: Vec<String> = wanted
        .iter()
        .map(|(part, name, _)| format!("{part} `{name}`"))
        .collect();
    if found_parts != wanted_parts {
        errors.push(format!(
            "function `{name}`: the table's function and layer rows (data-part, data-name): expected {}, found {}",
            wanted_parts.join(", "),
            if found_parts.is_empty() {
                "none".to_string()
            } else {
                found_parts.join(", ")
            }
        ));
    }
    let mut sum: u64 = 0;
    for row in &rows {
        let text = row.get("data-bytes").map_or("", String::as_str);
        let Ok(bytes) = text.parse::<u64>() else {
            errors.push(format!(
                "function `{name}`: row {}: data-bytes: expected a number of bytes, found \"{text}\"",
                describe(row)
            ));
            continue;
        };
        sum += bytes;
        let wanted = wanted.iter().find(|(part, wanted_name, _)| {
            row.get("data-part").map(String::as_str) == Some(part)
                && row.get("data-name").map(String::as_str) == Some(wanted_name.as_str())
        });
        if let Some((part, _, expected)) = wanted {
            if bytes != *expected {
                let source = if *part == "function" {
                    "the manifest's function unzipped_bytes"
                } else {
                    "the manifest's layer unzipped_bytes"
                };
                errors.push(format!(
                    "function `{name}`: row {}: data-bytes: expected {expected} ({source}), found {bytes}",
                    describe(row)
                ));
            }
        }
    }
    if !rows.is_empty() && sum != function.total {
        errors.push(format!(
            "function `{name}`: the table's function and layer rows sum to {sum} bytes: expected {} (check-limits' total_unzipped_bytes)",
            function.total
        ));
    }
}
