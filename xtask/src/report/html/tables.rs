//! What the page says under each treemap: the notes (what the layers
//! leave to others, unused distributions, files shipped twice, the
//! verdicts) and the same figures as the treemap as a table.

use std::fmt::Write as _;

use super::format::{esc, grouped, percent};
use crate::config::manifest::IMAGE_BASE_LAYER;
use crate::ground::progress::human_bytes;
use crate::report::groups::{Group, LeafKind};
use crate::report::model::{FunctionView, Part, PartKind, Provided, ProvidedBy, Twice};

/// One note: whether it tells of an error, and its HTML.
type Note = (bool, String);

/// What the layers leave to others, unused distributions, files shipped
/// twice, and what the check said.
pub(super) fn notes(out: &mut String, view: &FunctionView) {
    let mut items: Vec<Note> = view
        .provided
        .iter()
        .map(|provided| (false, provided_note(view, provided)))
        .collect();
    if let Some(report) = view.check {
        if !report.imports.runtime.is_empty() {
            let modules: Vec<&str> = report.imports.runtime.iter().map(String::as_str).collect();
            items.push((
                false,
                format!("Imported from the runtime: {}.", esc(&modules.join(", "))),
            ));
        }
        for unused in &report.imports.unused {
            items.push((
                false,
                format!(
                    "Unused (hatched): {} {} in layer <code>{}</code>, {}: nothing {} reaches imports it.",
                    esc(&unused.distribution),
                    esc(&unused.version),
                    esc(&unused.layer),
                    human_bytes(unused.unzipped_bytes),
                    esc(view.name)
                ),
            ));
        }
    }
    items.extend(view.twice.iter().map(|twice| (false, twice_note(twice))));
    items.extend(verdict_notes(view));
    if items.is_empty() {
        return;
    }
    put!(out, "<ul class=\"notes\">\n");
    for (error, text) in items {
        if error {
            put!(out, "<li class=\"error\">{text}</li>\n");
        } else {
            put!(out, "<li>{text}</li>\n");
        }
    }
    put!(out, "</ul>\n");
}

/// What one layer leaves out, and to whom.
fn provided_note(view: &FunctionView, provided: &Provided) -> String {
    let list = esc(&provided.distributions.join(", "));
    let layer = esc(&provided.layer);
    match &provided.by {
        ProvidedBy::Runtime => {
            format!("Runtime-provided, left out of layer <code>{layer}</code>: {list}.")
        }
        ProvidedBy::Exclude => {
            format!("Left out of layer <code>{layer}</code> by <code>exclude</code>: {list}.")
        }
        ProvidedBy::Bases(bases) => {
            let saved = view
                .check
                .and_then(|report| {
                    report
                        .stacked
                        .iter()
                        .find(|stacked| stacked.layer == provided.layer)
                })
                .map(|stacked| format!(" ({} shipped once)", human_bytes(stacked.saved_bytes)))
                .unwrap_or_default();
            format!(
                "Layer <code>{layer}</code> leaves to its base {}: {list}{saved}.",
                esc(&bases.join(", "))
            )
        }
    }
}

/// The files some layers both ship, the first few by name.
fn twice_note(twice: &Twice) -> String {
    let shown: Vec<String> = twice
        .paths
        .iter()
        .take(8)
        .map(|path| format!("<code>{}</code>", esc(path)))
        .collect();
    let more = twice.paths.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let last = twice.layers.last().map(String::as_str).unwrap_or_default();
    format!(
        "Shipped twice (red): {} file(s), {} in each of the layers {}; {}'s copy runs: {}{more}.",
        twice.paths.len(),
        human_bytes(twice.bytes / twice.layers.len().max(1) as u64),
        esc(&twice.layers.join(", ")),
        esc(last),
        shown.join(", ")
    )
}

/// What check-limits and the smoke test said against the function.
fn verdict_notes(view: &FunctionView) -> Vec<Note> {
    let mut items = Vec::new();
    if let Some(report) = view.check {
        for error in &report.errors {
            items.push((true, format!("check-limits: {}", esc(error))));
        }
        for warning in &report.warnings {
            items.push((false, format!("check-limits warns: {}", esc(warning))));
        }
    }
    if let Some(smoke) = view.smoke {
        if smoke.failed() {
            let error = smoke.error.as_deref().unwrap_or("failed");
            items.push((true, format!("smoke: {}", esc(error))));
        }
    }
    items
}

/// The same figures as the treemap, as a table for screen readers and
/// copy-paste: the parts (they sum to the total) and the distributions.
pub(super) fn figures(out: &mut String, view: &FunctionView) {
    let sum: u64 = view.parts.iter().map(|part| part.bytes).sum();
    let total = view.check.map_or(sum, |report| report.total_unzipped_bytes);
    put!(
        out,
        "<table class=\"figures\">\n<caption>{}: {}, with the distributions of each dependency layer</caption>\n\
         <thead><tr><th scope=\"col\">part</th><th scope=\"col\">name</th><th scope=\"col\">version</th>\
         <th scope=\"col\" class=\"num\">bytes</th><th scope=\"col\" class=\"num\">size</th><th scope=\"col\" class=\"num\">share</th>\
         <th scope=\"col\">notes</th></tr></thead>\n<tbody>\n",
        esc(view.name),
        if view.image.is_some() {
            "bytes uncompressed, by image layer from the base up"
        } else {
            "bytes unzipped, by part in Lambda's order"
        }
    );
    for (index, part) in view.parts.iter().enumerate() {
        part_row(out, view, index, part, total);
        if part.kind != PartKind::Dependency {
            continue;
        }
        for (slot, group) in part.groups.iter().enumerate() {
            group_row(out, part, &format!("p{index}.g{slot}"), group, total);
        }
    }
    put!(
        out,
        "</tbody>\n<tfoot><tr><th scope=\"row\" colspan=\"3\">total</th><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">100.0%</td><td>{}</td></tr></tfoot>\n</table>\n",
        grouped(total),
        human_bytes(total),
        if view.check.is_some() {
            "as check-limits measured it"
        } else {
            "not checked: the sum of the manifest's sizes"
        }
    );
}

/// A part's row: the function's own code or one attached layer.
fn part_row(out: &mut String, view: &FunctionView, index: usize, part: &Part, total: u64) {
    let (kind, label) = match part.kind {
        PartKind::Function => ("function", "function code".to_string()),
        PartKind::Base => ("base", "base image".to_string()),
        _ => ("layer", format!("layer {index}")),
    };
    let note = match part.kind {
        PartKind::Function if view.image.is_some() => "image layer: its code in /var/task".into(),
        PartKind::Function => format!("{} file(s)", view.entry.zip.files),
        PartKind::Base => {
            let layers = view.image.map_or(0, |image| {
                image
                    .layers
                    .iter()
                    .filter(|layer| layer.name == IMAGE_BASE_LAYER)
                    .count()
            });
            format!("{layers} image layer(s) of the base, by digest; not counted by the budget")
        }
        PartKind::Dependency => {
            let distributions = part.groups.iter().filter(|group| group.distribution).count();
            format!("dependency layer, {distributions} distribution(s)")
        }
        PartKind::Source => "source layer (application code)".into(),
        PartKind::External => "external layer: its declared size".into(),
    };
    put!(
        out,
        "<tr data-part=\"{kind}\" data-name=\"{}\" data-bytes=\"{}\" data-key=\"p{index}\"><td>{label}</td><td>{}</td><td></td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{note}</td></tr>\n",
        esc(&part.name),
        part.bytes,
        esc(&part.name),
        grouped(part.bytes),
        human_bytes(part.bytes),
        percent(part.bytes, total),
    );
}

/// A row under a dependency layer: one distribution, or what none claims.
fn group_row(out: &mut String, part: &Part, key: &str, group: &Group, total: u64) {
    let mut notes = Vec::new();
    if group.unused {
        notes.push("unused".to_string());
    }
    if group.twice_files > 0 {
        notes.push(format!(
            "{} file(s), {}, shipped twice",
            group.twice_files,
            human_bytes(group.twice_bytes)
        ));
    }
    let largest: Vec<String> = group
        .leaves
        .iter()
        .filter(|leaf| leaf.kind == LeafKind::File)
        .map(|leaf| {
            let path = leaf.label.strip_prefix("python/").unwrap_or(&leaf.label);
            format!("{path} {}", human_bytes(leaf.bytes))
        })
        .collect();
    if !largest.is_empty() {
        notes.push(format!("largest: {}", largest.join(", ")));
    }
    let attributes = if group.distribution {
        format!(
            " data-part=\"distribution\" data-layer=\"{}\" data-name=\"{}\" data-bytes=\"{}\"",
            esc(&part.name),
            esc(&group.name),
            group.bytes
        )
    } else {
        String::new()
    };
    put!(
        out,
        "<tr class=\"sub\"{attributes} data-key=\"{key}\"><td>{}</td><td>{}</td><td>{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
        if group.distribution {
            "distribution"
        } else {
            "other files"
        },
        esc(&group.name),
        esc(group.version.as_deref().unwrap_or("")),
        grouped(group.bytes),
        human_bytes(group.bytes),
        percent(group.bytes, total),
        esc(&notes.join("; "))
    );
}
