//! What commands show people: the plan of a dry run, the tables of layers
//! and functions, the check reports and the smoke verdicts. Text is
//! returned, and the command's printer decides where it goes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::manifest::{LayerKind, Manifest};
use crate::config::Config;
use crate::facts;
use crate::graph::{Graph, Kind, Status};
use crate::ground::progress::{human_bytes, ms};
use crate::lambda::samples::Verdict;
use crate::python::installer;
use crate::steps::limits::FunctionReport;
use crate::steps::smoke::Outcome;

/// `writeln!` into a String, which cannot fail.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

/// One line per node the plan would run, with the reason.
pub fn plan_lines(graph: &Graph, statuses: &[Option<Status>], targets: &[usize]) -> String {
    let mut out = String::new();
    let closure = graph.closure(targets);
    let mut fresh = 0;
    for (index, node) in graph.nodes.iter().enumerate() {
        if !closure.contains(&index) {
            continue;
        }
        match &statuses[index] {
            Some(Status::Stale { reason, .. }) => {
                say!(out, "{}: {reason}", node.id());
            }
            Some(Status::Fresh { .. }) => fresh += 1,
            _ => {}
        }
    }
    say!(out, "{fresh} up to date, {} to run", closure.len() - fresh);
    out
}

/// The plan as JSON: every node the command needs, its state and reason.
pub fn plan_json(
    graph: &Graph,
    statuses: &[Option<Status>],
    targets: &[usize],
    removed: &[String],
) -> serde_json::Value {
    let closure = graph.closure(targets);
    let nodes: Vec<serde_json::Value> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(index, _)| closure.contains(index))
        .map(|(index, node)| {
            let (state, reason, key) = match &statuses[index] {
                Some(Status::Fresh { key, .. }) => ("fresh", None, Some(key.clone())),
                Some(Status::Stale { reason, key, .. }) => ("stale", Some(reason.clone()), key.clone()),
                _ => ("unknown", None, None),
            };
            serde_json::json!({
                "kind": node.kind,
                "name": node.name,
                "state": state,
                "reason": reason,
                "key": key,
            })
        })
        .collect();
    // The builder of the repository's platform (of the first, when no
    // profile is built for it).
    let builder = graph.builders.values().find_map(|builder| match builder {
        crate::store::tools::Planned::Ready(builder) => Some(builder.name().to_string()),
        _ => None,
    });
    serde_json::json!({ "builder": builder, "notes": graph.notes, "plan": nodes, "dist_removed": removed })
}

/// The dependency layers that are built: sizes and largest packages.
pub fn layer_table(manifest: &Manifest, names: &[&str]) -> String {
    let mut out = String::new();
    if names.is_empty() {
        say!(out, "no dependency layers configured");
        return out;
    }
    say!(
        out,
        "\n  {:<12} {:>9} {:>9} {:>7}  largest packages",
        "layer",
        "zipped",
        "unzipped",
        "files"
    );
    for name in names {
        let Some(entry) = manifest.layers.get(*name) else {
            say!(out, "  {name:<12} not built");
            continue;
        };
        let largest: Vec<String> = entry
            .packages
            .iter()
            .take(3)
            .map(|package| format!("{} {}", package.name, human_bytes(package.unzipped_bytes)))
            .collect();
        say!(
            out,
            "  {:<12} {:>9} {:>9} {:>7}  {}",
            name,
            human_bytes(entry.zipped_bytes.unwrap_or(0)),
            human_bytes(entry.unzipped_bytes),
            entry.files.unwrap_or(0),
            largest.join(", ")
        );
        if let Some(excluded) = entry.excluded.as_ref().filter(|excluded| !excluded.is_empty()) {
            say!(
                out,
                "  {:<12} left out (runtime-provided): {}",
                "",
                excluded.join(", ")
            );
        }
    }
    out
}

/// The function ZIPs and the source layers that replace copies of shared code.
pub fn function_table(config: &Config, manifest: &Manifest) -> String {
    let mut out = String::new();
    say!(
        out,
        "\n  {:<12} {:>6} {:>10} {:>10}  layers",
        "function",
        "files",
        "zipped",
        "unzipped"
    );
    for (name, entry) in &manifest.functions {
        let layers = if entry.bundled.is_empty() {
            entry.layers.join(", ")
        } else {
            format!("(bundled: {})", entry.bundled.join(", "))
        };
        say!(
            out,
            "  {:<12} {:>6} {:>10} {:>10}  {}",
            name,
            entry.zip.files,
            human_bytes(entry.zip.zipped_bytes),
            human_bytes(entry.zip.unzipped_bytes),
            layers
        );
    }
    for (name, layer) in manifest
        .layers
        .iter()
        .filter(|(_, entry)| entry.kind == LayerKind::Source)
    {
        let users = config
            .functions
            .values()
            .filter(|function| {
                !function.bundle
                    && function
                        .layers
                        .iter()
                        .any(|layer| &config.attached(function, layer) == name)
            })
            .count();
        say!(
            out,
            "  layer `{name}`: {} files, {} unzipped, shipped once for {users} function(s) instead of {} as copies",
            layer.files.unwrap_or(0),
            human_bytes(layer.unzipped_bytes),
            human_bytes(layer.unzipped_bytes * users as u64)
        );
    }
    out
}

/// The check reports and smoke outcomes of the functions, by name.
pub fn verdicts(
    graph: &Graph,
    statuses: &[Option<Status>],
) -> (BTreeMap<String, FunctionReport>, BTreeMap<String, Outcome>) {
    let mut checks = BTreeMap::new();
    let mut smokes = BTreeMap::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        let Some(entry) = statuses[index].as_ref().and_then(Status::entry) else {
            continue;
        };
        match node.kind {
            Kind::Check => {
                if let Ok(report) = serde_json::from_value(entry.data.clone()) {
                    checks.insert(node.name.clone(), report);
                }
            }
            Kind::Smoke => {
                if let Ok(outcome) = serde_json::from_value(entry.data.clone()) {
                    smokes.insert(node.name.clone(), outcome);
                }
            }
            _ => {}
        }
    }
    (checks, smokes)
}

/// Every check warning, one line each, naming its function.
pub fn check_warnings(reports: &BTreeMap<String, FunctionReport>) -> Vec<String> {
    reports
        .iter()
        .flat_map(|(name, report)| {
            report
                .warnings
                .iter()
                .map(move |warning| format!("{name}: {warning}"))
        })
        .collect()
}

/// `check: 5 function(s) ok, the largest sms 36.4 MiB of 50.0 MiB`.
pub fn check_summary(reports: &BTreeMap<String, FunctionReport>) -> String {
    let largest = reports
        .iter()
        .max_by_key(|(_, report)| report.total_unzipped_bytes)
        .map(|(name, report)| {
            let budget = report
                .budget_bytes
                .map(|budget| format!(" (budget {})", human_bytes(budget)))
                .unwrap_or_default();
            let how = if report.image.is_some() {
                "as an image"
            } else {
                "unzipped"
            };
            format!(
                ", largest {name} {} {how}{budget}",
                human_bytes(report.total_unzipped_bytes)
            )
        })
        .unwrap_or_default();
    format!(
        "check: {} function(s) within AWS's limits{largest}",
        reports.len()
    )
}

/// `smoke: 5 imported, slowest auth 587 ms (budget 3000 ms)`.
pub fn smoke_summary(outcomes: &BTreeMap<String, Outcome>) -> String {
    let skipped = outcomes
        .values()
        .filter(|outcome| outcome.skipped.is_some())
        .count();
    let imported = outcomes.values().filter(|outcome| outcome.ok).count();
    let slowest = outcomes
        .iter()
        .filter(|(_, outcome)| outcome.ok)
        .max_by(|a, b| {
            a.1.import_ms
                .unwrap_or(0.0)
                .total_cmp(&b.1.import_ms.unwrap_or(0.0))
        })
        .map(|(name, outcome)| {
            format!(
                ", slowest {name} {} (budget {} ms)",
                ms(outcome.import_ms),
                outcome.budget_ms
            )
        })
        .unwrap_or_default();
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped")
    } else {
        String::new()
    };
    format!("smoke: {imported} handler(s) imported{slowest}{skipped}")
}

/// The check reports, a block per function, and a closing line.
pub fn check_reports(config: &Config, reports: &BTreeMap<String, FunctionReport>) -> String {
    let mut out = String::new();
    let budget = config
        .budget
        .map(|budget| format!(", budget {}", human_bytes(budget)))
        .unwrap_or_default();
    let images = if reports.values().any(|report| report.image.is_some()) {
        format!(", {} bytes uncompressed per image", facts::MAX_IMAGE_BYTES)
    } else {
        String::new()
    };
    say!(
        out,
        "check-limits: {} {}, limit {} bytes unzipped per function with its layers{images}{budget}",
        config.runtime.name,
        config.arch.name(),
        facts::MAX_UNZIPPED_BYTES
    );
    for (name, report) in reports {
        let layers: Vec<&str> = report.layers.iter().map(|layer| layer.name.as_str()).collect();
        let layers = if layers.is_empty() {
            "no layers".to_string()
        } else {
            layers.join(" → ")
        };
        if report.image.is_some() {
            say!(out, "\n  {name}  [image: base → {layers} → function]");
        } else {
            say!(out, "\n  {name}  [{layers}]");
        }
        if let Some(image) = &report.image {
            say!(
                out,
                "    {:<14} {:>10}   {} layer(s) of {}",
                "base",
                human_bytes(image.base_bytes),
                image.base_layers,
                image.base
            );
        }
        say!(
            out,
            "    {:<14} {:>10}",
            "function",
            human_bytes(report.function_unzipped_bytes)
        );
        for layer in &report.layers {
            say!(
                out,
                "    {:<14} {:>10}",
                layer.name,
                human_bytes(layer.unzipped_bytes)
            );
        }
        let mut headroom = format!(
            "headroom {} to {}",
            signed_bytes(report.headroom_bytes),
            human_bytes(report.limit_bytes)
        );
        if report.image.is_some() {
            headroom.push_str(" (an image, uncompressed)");
        }
        if let (Some(budget), Some(left)) = (report.budget_bytes, report.budget_headroom_bytes) {
            headroom.push_str(&format!(
                ", {} to the {} budget",
                signed_bytes(left),
                human_bytes(budget)
            ));
            if let Some(image) = &report.image {
                headroom.push_str(&format!(
                    " (which counts the image's own {}, not the base)",
                    human_bytes(image.shipped_bytes)
                ));
            }
        }
        say!(
            out,
            "    {:<14} {:>10}   {headroom}",
            "total",
            human_bytes(report.total_unzipped_bytes)
        );
        if !report.largest.is_empty() {
            let largest: Vec<String> = report
                .largest
                .iter()
                .map(|(name, size)| format!("{name} {}", human_bytes(*size)))
                .collect();
            say!(out, "    {:<14} {}", "largest", largest.join(", "));
        }
        for stacked in &report.stacked {
            say!(
                out,
                "    {:<14} {} on {}: {} distribution(s), {}, shipped once in the base",
                "stacked",
                stacked.layer,
                stacked.bases.join(", "),
                stacked.distributions.len(),
                human_bytes(stacked.saved_bytes)
            );
        }
        let mut imports: Vec<String> = report
            .imports
            .provided
            .iter()
            .map(|(module, layer)| format!("{module} ← {layer}"))
            .collect();
        imports.extend(
            report
                .imports
                .runtime
                .iter()
                .map(|module| format!("{module} ← runtime")),
        );
        if !imports.is_empty() {
            say!(out, "    {:<14} {}", "imports", imports.join(", "));
        }
        if let Some(image) = &report.image {
            let at = image
                .uri
                .clone()
                .unwrap_or_else(|| format!("{} (not pushed)", image.digest));
            say!(
                out,
                "    {:<14} {} compressed, {at}",
                "image",
                human_bytes(report.zipped_bytes)
            );
        }
        for warning in &report.warnings {
            say!(out, "    warning: {warning}");
        }
        for error in &report.errors {
            say!(out, "    error: {error}");
        }
        say!(out, "    {}", if report.ok { "ok" } else { "FAILED" });
    }
    let failed = reports.values().filter(|report| !report.ok).count();
    let warnings: usize = reports.values().map(|report| report.warnings.len()).sum();
    if failed == 0 {
        say!(
            out,
            "\ncheck-limits: {} function(s) ok, {warnings} warning(s)",
            reports.len()
        );
    } else {
        say!(
            out,
            "\ncheck-limits: {failed} of {} function(s) FAILED",
            reports.len()
        );
    }
    out
}

fn signed_bytes(value: i64) -> String {
    if value < 0 {
        format!("-{}", human_bytes(value.unsigned_abs()))
    } else {
        human_bytes(value as u64)
    }
}

/// Function, init duration, budget and verdict on stderr; with `--quiet` only
/// the functions that failed.
pub fn smoke_table(outcomes: &BTreeMap<String, Outcome>, quiet: bool) -> String {
    let mut out = String::new();
    let rows: Vec<(&String, &Outcome)> = outcomes
        .iter()
        .filter(|(_, outcome)| !quiet || outcome.failed())
        .collect();
    if rows.is_empty() {
        return out;
    }
    say!(
        out,
        "\n  {:<14} {:>9} {:>9}  verdict",
        "function",
        "init",
        "budget"
    );
    for (name, outcome) in rows {
        let verdict = match (&outcome.skipped, &outcome.error) {
            (Some(reason), Some(error)) => format!("unverified: {error}; {reason}"),
            (Some(reason), None) => format!("skipped: {reason}"),
            (None, Some(error)) => format!("FAILED: {error}"),
            (None, None) => "ok".to_string(),
        };
        let budget = format!("{} ms", outcome.budget_ms);
        say!(
            out,
            "  {name:<14} {:>9} {budget:>9}  {verdict}",
            ms(outcome.import_ms)
        );
        for note in &outcome.notes {
            say!(out, "  {:<14} note: {note}", "");
        }
        if let Some(traceback) = &outcome.traceback {
            for line in installer::last_lines(traceback.as_bytes(), 8) {
                say!(out, "  {:<14} | {line}", "");
            }
        }
    }
    out
}

/// `invoke --all`'s table: each event, the status it expects and got, its
/// duration and verdict.
pub fn invoke_table(rows: &[Verdict]) -> String {
    let mut out = String::new();
    say!(
        out,
        "\n  {:<12} {:<26} {:<9} {:<9} {:>8}  verdict",
        "function",
        "event",
        "expected",
        "got",
        "time"
    );
    for row in rows {
        let verdict = if row.error.is_some() { "FAILED" } else { "ok" };
        say!(
            out,
            "  {:<12} {:<26} {:<9} {:<9} {:>8}  {verdict}",
            row.function,
            row.event,
            row.expected,
            row.got,
            ms(row.duration_ms)
        );
    }
    out
}
