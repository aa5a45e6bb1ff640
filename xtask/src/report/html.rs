//! The page itself: HTML with its CSS, SVG and a few lines of JavaScript
//! inline, nothing fetched. Every figure is written into the HTML (the
//! script only links what the pointer is over in the treemap and the
//! table). Numbers have fixed formats, coordinates one decimal.

use std::fmt::Write as _;

use super::treemap::{squarify, Rect};
use super::{FunctionView, Group, Leaf, LeafKind, Model, Part, PartKind, ProvidedBy};
use crate::facts;
use crate::progress::human_bytes;

/// `write!` into a String, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        let _ = write!($out, $($arg)*);
    };
}

/// The drawing's width; the treemap's height and where it starts.
const WIDTH: f64 = 960.0;
const SCALE_HEIGHT: f64 = 64.0;
const MAP_HEIGHT: f64 = 420.0;

/// Colour-blind-safe hues (Tableau 10), one per layer by its place in the
/// manifest; the function's own code is slate.
const PALETTE: [(u8, u8, u8); 8] = [
    (0x4e, 0x79, 0xa7),
    (0xf2, 0x8e, 0x2b),
    (0x59, 0xa1, 0x4f),
    (0xb0, 0x7a, 0xa1),
    (0x76, 0xb7, 0xb2),
    (0xed, 0xc9, 0x48),
    (0x9c, 0x75, 0x5f),
    (0xff, 0x9d, 0xa7),
];
const FUNCTION_COLOUR: (u8, u8, u8) = (0x5f, 0x6b, 0x7a);
const TWICE_FILL: &str = "#f6c1bd";
const TWICE_STROKE: &str = "#b3261e";

const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bad: #b3261e; --ok: #1a7f37; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 6px; border-top: 1px solid var(--line); padding-top: 16px; }
p { margin: 4px 0; }
.muted { color: var(--muted); }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.sub > td:nth-child(-n+2) { padding-left: 22px; color: var(--muted); }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
svg.treemap { display: block; width: 100%; height: auto; margin: 8px 0; }
svg.treemap text { font-size: 11px; pointer-events: none; }
svg.defs { position: absolute; width: 0; height: 0; }
.badge { display: inline-block; padding: 0 7px; border: 1px solid; border-radius: 9px; font-size: 12px; font-weight: 600; vertical-align: 2px; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }
.none { color: var(--muted); }
ul.notes { padding-left: 20px; margin: 6px 0; }
li.error { color: var(--bad); }
.legend { font-size: 12px; color: var(--muted); margin: 2px 0 6px; }
.legend span { margin-right: 12px; white-space: nowrap; }
.swatch { display: inline-block; width: 11px; height: 11px; border: 1px solid rgba(0,0,0,.25); border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
.swatch.hatch { background: repeating-linear-gradient(45deg, #fff 0 2px, #777 2px 3px); }
.swatch.twice { background: #f6c1bd; border-color: #b3261e; }
.hl > rect:first-of-type { stroke: #000; stroke-width: 2.5; }
tr.hl { background: #fff8c5; }
"#;

/// Links a rectangle under the pointer to its row, and back.
const SCRIPT: &str = r#"
(function () {
  function mark(section, key, on) {
    section.querySelectorAll('[data-key="' + key + '"]').forEach(function (el) { el.classList.toggle('hl', on); });
  }
  document.querySelectorAll('section.function').forEach(function (section) {
    var current = null;
    section.addEventListener('mouseover', function (event) {
      var el = event.target.closest ? event.target.closest('[data-key]') : null;
      var key = el ? el.getAttribute('data-key') : null;
      if (key === current) return;
      if (current) mark(section, current, false);
      current = key;
      if (key) mark(section, key, true);
    });
    section.addEventListener('mouseleave', function () {
      if (current) mark(section, current, false);
      current = null;
    });
  });
})();
"#;

pub fn page(model: &Model) -> String {
    let mut out = String::with_capacity(256 * 1024);
    put!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Lambda package report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    put!(
        out,
        "<svg class=\"defs\" aria-hidden=\"true\" focusable=\"false\"><defs>\
         <pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#222\" stroke-width=\"1.6\" stroke-opacity=\"0.6\"/>\
         </pattern></defs></svg>\n"
    );
    put!(
        out,
        "<main id=\"report\" data-functions=\"{}\">\n<header>\n<h1>Lambda package report</h1>\n",
        model.functions.len()
    );
    let budget = model
        .budget
        .map(|budget| format!(", budget {}", human_bytes(budget)))
        .unwrap_or_default();
    put!(
        out,
        "<p class=\"muted\">{} {}, {} function(s). AWS's limit: {} bytes ({}) unzipped for a function with all its layers{budget}. \
         Sizes are bytes once unzipped; 1 MiB = 1,048,576 bytes.</p>\n</header>\n",
        esc(model.runtime),
        esc(model.architecture),
        model.functions.len(),
        grouped(facts::MAX_UNZIPPED_BYTES),
        human_bytes(facts::MAX_UNZIPPED_BYTES),
    );
    overview(&mut out, model);
    changes(&mut out, model);
    for view in &model.functions {
        function(&mut out, model, view);
    }
    put!(
        out,
        "<footer><p class=\"muted\">Written by <code>cargo xtask</code> from dist/manifest.json and the check and smoke \
         verdicts; <code>cargo xtask report</code> writes it again.</p></footer>\n</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    out
}

/// One line per function: total, shares of budget and limit, init, verdicts.
fn overview(out: &mut String, model: &Model) {
    put!(
        out,
        "<table class=\"overview\">\n<caption>Functions</caption>\n<thead><tr><th scope=\"col\">function</th>\
         <th scope=\"col\" class=\"num\">bytes unzipped</th><th scope=\"col\" class=\"num\">size</th>\
         <th scope=\"col\" class=\"num\">of budget</th><th scope=\"col\" class=\"num\">of limit</th>\
         <th scope=\"col\" class=\"num\">init</th><th scope=\"col\">check</th><th scope=\"col\">smoke</th></tr></thead>\n<tbody>\n"
    );
    for view in &model.functions {
        let total = view.check.map(|report| report.total_unzipped_bytes);
        put!(
            out,
            "<tr><th scope=\"row\"><a href=\"#function-{name}\">{name}</a></th><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
            total.map(grouped).unwrap_or_else(|| "—".into()),
            total.map(human_bytes).unwrap_or_else(|| "—".into()),
            match (total, view.budget) {
                (Some(total), Some(budget)) => percent(total, budget),
                _ => "—".into(),
            },
            total.map_or_else(|| "—".into(), |total| percent(total, facts::MAX_UNZIPPED_BYTES)),
            init_time(view),
            check_badge(view),
            smoke_badge(view),
            name = esc(view.name),
        );
    }
    put!(out, "</tbody>\n</table>\n");
}

/// What changed since the previous, different build.
fn changes(out: &mut String, model: &Model) {
    let changes = &model.changes;
    put!(
        out,
        "<section id=\"changes\" data-previous=\"{}\">\n<h2>Changes since the previous build</h2>\n",
        changes.previous
    );
    if !changes.previous {
        put!(
            out,
            "<p>No previous build to compare with: this is the first report of this checkout's build cache.</p>\n"
        );
    } else if changes.functions.is_empty() {
        put!(
            out,
            "<p>No function changed since the previous build (what changed is attached to none).</p>\n"
        );
    } else {
        put!(out, "<ul>\n");
        for change in &changes.functions {
            let delta = change.delta().map(|delta| delta.to_string()).unwrap_or_default();
            let headline = if change.added {
                format!(
                    "new function{}",
                    change
                        .after
                        .map(|after| format!(", {}", human_bytes(after)))
                        .unwrap_or_default()
                )
            } else if change.removed {
                "removed".to_string()
            } else {
                match (change.delta(), change.before, change.after) {
                    (Some(delta), Some(before), Some(after)) => format!(
                        "{} ({} → {} bytes)",
                        signed_bytes(delta),
                        grouped(before),
                        grouped(after)
                    ),
                    _ => "size not compared (not checked in both builds)".to_string(),
                }
            };
            let details = if change.details.is_empty() {
                String::new()
            } else {
                format!(": {}", esc(&change.details.join("; ")))
            };
            put!(
                out,
                "<li data-function=\"{name}\" data-delta-bytes=\"{delta}\"><strong>{name}</strong> {}{details}</li>\n",
                esc(&headline),
                name = esc(&change.function),
            );
        }
        put!(out, "</ul>\n");
    }
    put!(out, "</section>\n");
}

fn function(out: &mut String, model: &Model, view: &FunctionView) {
    let total = view.check.map(|report| report.total_unzipped_bytes);
    let init = view
        .smoke
        .and_then(|smoke| smoke.import_ms)
        .map(|ms| format!("{ms:.1}"))
        .unwrap_or_default();
    put!(
        out,
        "<section class=\"function\" id=\"function-{name}\" data-function=\"{name}\" data-total-bytes=\"{}\" \
         data-limit-bytes=\"{}\" data-budget-bytes=\"{}\" data-init-ms=\"{init}\">\n\
         <h2>{name} {} {}</h2>\n",
        total.map(|total| total.to_string()).unwrap_or_default(),
        facts::MAX_UNZIPPED_BYTES,
        view.budget.map(|budget| budget.to_string()).unwrap_or_default(),
        check_badge(view),
        smoke_badge(view),
        name = esc(view.name),
    );
    let size = match total {
        Some(total) => {
            let budget = view
                .budget
                .map(|budget| {
                    format!(
                        "{} of the {} budget, ",
                        percent(total, budget),
                        human_bytes(budget)
                    )
                })
                .unwrap_or_default();
            format!(
                "{} bytes ({}) unzipped with its layers: {budget}{} of the limit",
                grouped(total),
                human_bytes(total),
                percent(total, facts::MAX_UNZIPPED_BYTES)
            )
        }
        None => "not checked yet: run <code>cargo xtask check-limits</code> (sizes below are the manifest's)"
            .into(),
    };
    put!(
        out,
        "<p>{size}. Init {}. <span class=\"muted\">Handler <code>{}</code>, {} {}, {} MB.</span></p>\n",
        init_time(view),
        esc(&view.entry.handler),
        esc(&view.entry.runtime),
        esc(&view.entry.architecture),
        view.entry.memory_mb
    );
    treemap(out, model, view);
    legend(out, model, view);
    notes(out, view);
    figures(out, view);
    put!(out, "</section>\n");
}

/// `312.4 ms (budget 3000 ms)`, or why there is no time; only the measured
/// figure is in `span.ms`.
fn init_time(view: &FunctionView) -> String {
    let Some(smoke) = view.smoke else {
        return "not measured (no smoke test yet)".into();
    };
    match (smoke.import_ms, &smoke.skipped, &smoke.error) {
        (Some(ms), _, _) => format!(
            "<span class=\"ms\">{ms:.1} ms</span> (budget {} ms)",
            smoke.budget_ms
        ),
        (None, Some(reason), _) => format!("not measured: {}", esc(reason)),
        (None, None, Some(error)) => format!("failed: {}", esc(smoke.error_type.as_deref().unwrap_or(error))),
        (None, None, None) => "not measured".into(),
    }
}

fn check_badge(view: &FunctionView) -> String {
    match view.check {
        Some(report) if report.ok => "<span class=\"badge ok\">check ok</span>".into(),
        Some(_) => "<span class=\"badge bad\">check failed</span>".into(),
        None => "<span class=\"badge none\">not checked</span>".into(),
    }
}

fn smoke_badge(view: &FunctionView) -> String {
    match view.smoke {
        Some(smoke) if smoke.ok => "<span class=\"badge ok\">smoke ok</span>".into(),
        Some(smoke) if smoke.skipped.is_some() => "<span class=\"badge none\">smoke skipped</span>".into(),
        Some(_) => "<span class=\"badge bad\">smoke failed</span>".into(),
        None => "<span class=\"badge none\">no smoke test</span>".into(),
    }
}

fn colour(model: &Model, part: &Part) -> (u8, u8, u8) {
    match part.kind {
        PartKind::Function => FUNCTION_COLOUR,
        _ => model
            .colours
            .get(&part.name)
            .map_or(PALETTE[0], |slot| PALETTE[slot % PALETTE.len()]),
    }
}

fn treemap(out: &mut String, model: &Model, view: &FunctionView) {
    let sum: u64 = view.parts.iter().map(|part| part.bytes).sum();
    let total = view.check.map_or(sum, |report| report.total_unzipped_bytes);
    let parts: Vec<String> = view
        .parts
        .iter()
        .map(|part| format!("{} {}", part_title(part), human_bytes(part.bytes)))
        .collect();
    let mut label = format!(
        "{}: {} unzipped; {}; limit {}",
        view.name,
        human_bytes(total),
        parts.join(", "),
        human_bytes(facts::MAX_UNZIPPED_BYTES)
    );
    if let Some(budget) = view.budget {
        label.push_str(&format!(", budget {}", human_bytes(budget)));
    }
    put!(
        out,
        "<svg class=\"treemap\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\">\n",
        esc(&label),
        num(WIDTH),
        num(SCALE_HEIGHT + MAP_HEIGHT),
        num(WIDTH),
        num(SCALE_HEIGHT + MAP_HEIGHT)
    );
    scale(out, model, view, total);
    let bounds = Rect::new(0.0, SCALE_HEIGHT, WIDTH, MAP_HEIGHT);
    let values: Vec<f64> = view.parts.iter().map(|part| part.bytes as f64).collect();
    for (index, (part, rect)) in view.parts.iter().zip(squarify(&values, bounds)).enumerate() {
        draw_part(out, model, view, index, part, rect, total);
    }
    put!(out, "</svg>\n");
}

/// The bar above the treemap: each part's bytes from zero, and lines at
/// the budget and at AWS's limit.
fn scale(out: &mut String, model: &Model, view: &FunctionView, total: u64) {
    let limit = facts::MAX_UNZIPPED_BYTES;
    let top = limit.max(total).max(view.budget.unwrap_or(0)) as f64;
    let x = |bytes: u64| (bytes as f64 / top * WIDTH).clamp(0.0, WIDTH);
    let (bar_y, bar_h) = (22.0, 14.0);
    put!(out, "<g class=\"scale\">\n");
    put!(
        out,
        "<rect x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#eef1f4\"><title>0 to {} bytes</title></rect>\n",
        num(bar_y),
        num(WIDTH),
        num(bar_h),
        grouped(top as u64)
    );
    let mut at = 0u64;
    for (index, part) in view.parts.iter().enumerate() {
        let (from, to) = (x(at), x(at + part.bytes));
        at += part.bytes;
        if to - from < 0.05 {
            continue;
        }
        put!(
            out,
            "<rect data-key=\"p{index}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {} bytes ({})</title></rect>\n",
            num(from),
            num(bar_y),
            num(to - from),
            num(bar_h),
            hex(colour(model, part)),
            esc(&part_title(part)),
            grouped(part.bytes),
            human_bytes(part.bytes)
        );
    }
    let limit_x = x(limit);
    put!(
        out,
        "<line class=\"limit\" data-bytes=\"{limit}\" x1=\"{lx}\" y1=\"14\" x2=\"{lx}\" y2=\"44\" stroke=\"#b3261e\" stroke-width=\"2\"/>\n\
         <text x=\"{}\" y=\"11\" text-anchor=\"end\" fill=\"#b3261e\">limit {} bytes ({})</text>\n",
        num((limit_x - 3.0).max(0.0)),
        grouped(limit),
        human_bytes(limit),
        lx = num((limit_x - 1.0).max(1.0)),
    );
    if let Some(budget) = view.budget {
        let budget_x = x(budget).clamp(1.0, WIDTH - 1.0);
        // The label goes left of its line when it would run into the limit's.
        let (anchor, text_x) = if budget_x + 150.0 < limit_x - 230.0 {
            ("start", budget_x + 4.0)
        } else {
            ("end", budget_x - 4.0)
        };
        put!(
            out,
            "<line class=\"budget\" data-bytes=\"{budget}\" x1=\"{bx}\" y1=\"14\" x2=\"{bx}\" y2=\"44\" stroke=\"#7a5a00\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>\n\
             <text x=\"{}\" y=\"11\" text-anchor=\"{anchor}\" fill=\"#7a5a00\">budget {}</text>\n",
            num(text_x),
            human_bytes(budget),
            bx = num(budget_x),
        );
    }
    let total_x = x(total);
    let (anchor, text_x) = if total_x > WIDTH - 200.0 {
        ("end", total_x)
    } else {
        ("start", total_x.max(0.0))
    };
    put!(
        out,
        "<text x=\"{}\" y=\"54\" text-anchor=\"{anchor}\">total {} ({} bytes)</text>\n</g>\n",
        num(text_x),
        human_bytes(total),
        grouped(total)
    );
}

fn part_title(part: &Part) -> String {
    match part.kind {
        PartKind::Function => "function code".to_string(),
        _ => format!("layer {}", part.name),
    }
}

/// What a layer is, after its name in a title.
fn kind_name(kind: PartKind) -> &'static str {
    match kind {
        PartKind::Function => "",
        PartKind::Dependency => ", dependency layer",
        PartKind::Source => ", source layer",
        PartKind::External => ", external layer (declared size)",
    }
}

/// Squarifies `values` inside `bounds`, leaving the share of `whole` they
/// do not cover empty, so that areas stay proportional to bytes.
fn layout(values: &[f64], whole: f64, bounds: Rect) -> Vec<Rect> {
    let sum: f64 = values.iter().sum();
    let mut all = values.to_vec();
    if whole > sum {
        all.push(whole - sum);
    }
    let mut rects = squarify(&all, bounds);
    rects.truncate(values.len());
    rects
}

fn draw_part(
    out: &mut String,
    model: &Model,
    view: &FunctionView,
    index: usize,
    part: &Part,
    rect: Rect,
    total: u64,
) {
    if !visible(&rect) {
        return;
    }
    let base = colour(model, part);
    put!(
        out,
        "<g class=\"part\" data-key=\"p{index}\"><title>{} of {}{}: {} bytes ({}), {} of {}</title>\n",
        esc(&part_title(part)),
        esc(view.name),
        kind_name(part.kind),
        grouped(part.bytes),
        human_bytes(part.bytes),
        percent(part.bytes, total),
        human_bytes(total)
    );
    put!(out, "{}\n", rect_tag(&rect, &hex(base), "#fff", 2.0));
    let labelled = rect.w >= 48.0 && rect.h >= 34.0;
    let inner = if labelled {
        rect.inset(2.0, 17.0, 2.0, 2.0)
    } else {
        rect.inset(1.5, 1.5, 1.5, 1.5)
    };
    let values: Vec<f64> = part.groups.iter().map(|group| group.bytes as f64).collect();
    for (slot, (group, rect)) in part
        .groups
        .iter()
        .zip(layout(&values, part.bytes as f64, inner))
        .enumerate()
    {
        draw_group(out, view, part, base, format!("p{index}.g{slot}"), group, rect);
    }
    if labelled {
        let text = format!("{} · {}", part_title(part), human_bytes(part.bytes));
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{}\" font-weight=\"600\">{}</text>\n",
            num(rect.x + 4.0),
            num(rect.y + 13.0),
            text_on(base),
            esc(&fit(&text, rect.w - 8.0, 6.6))
        );
    }
    put!(out, "</g>\n");
}

fn draw_group(
    out: &mut String,
    view: &FunctionView,
    part: &Part,
    base: (u8, u8, u8),
    key: String,
    group: &Group,
    rect: Rect,
) {
    if !visible(&rect) {
        return;
    }
    let mut title = match &group.version {
        Some(version) => format!("{} {version}", group.name),
        None => group.name.clone(),
    };
    title.push_str(&format!(
        ", {} of {}: {} bytes ({}), {} file(s)",
        part_title(part),
        view.name,
        grouped(group.bytes),
        human_bytes(group.bytes),
        group.files
    ));
    if group.unused {
        title.push_str(&format!("; unused: nothing {} reaches imports it", view.name));
    }
    if group.twice_files > 0 {
        title.push_str(&format!(
            "; {} file(s), {}, shipped by another attached layer too",
            group.twice_files,
            human_bytes(group.twice_bytes)
        ));
    }
    let class = match (group.unused, group.twice_files > 0) {
        (true, true) => "group unused twice",
        (true, false) => "group unused",
        (false, true) => "group twice",
        (false, false) => "group",
    };
    put!(
        out,
        "<g class=\"{class}\" data-key=\"{key}\"><title>{}</title>\n{}\n",
        esc(&title),
        rect_tag(&rect, &hex(tint(base, 0.3)), "#fff", 1.0)
    );
    let labelled = rect.w >= 44.0 && rect.h >= 28.0;
    let inner = if labelled {
        rect.inset(1.5, 14.0, 1.5, 1.5)
    } else {
        rect.inset(1.0, 1.0, 1.0, 1.0)
    };
    let values: Vec<f64> = group.leaves.iter().map(|leaf| leaf.bytes as f64).collect();
    for (leaf, rect) in group
        .leaves
        .iter()
        .zip(layout(&values, group.bytes as f64, inner))
    {
        draw_leaf(out, base, leaf, rect);
    }
    if group.unused {
        put!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"url(#hatch)\" stroke=\"#222\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" pointer-events=\"none\"/>\n",
            num(rect.x + 0.75),
            num(rect.y + 0.75),
            num((rect.w - 1.5).max(0.0)),
            num((rect.h - 1.5).max(0.0))
        );
    }
    if labelled {
        let name = match &group.version {
            Some(version) => format!("{} {version}", group.name),
            None => group.name.clone(),
        };
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#1b1f24\">{}</text>\n",
            num(rect.x + 3.0),
            num(rect.y + 11.0),
            esc(&fit(&name, rect.w - 6.0, 6.2))
        );
    }
    put!(out, "</g>\n");
}

fn draw_leaf(out: &mut String, base: (u8, u8, u8), leaf: &Leaf, rect: Rect) {
    if !visible(&rect) {
        return;
    }
    let (class, fill, stroke, stroke_width) = match leaf.kind {
        LeafKind::File => ("leaf", hex(tint(base, 0.55)), "#fff".to_string(), 0.5),
        LeafKind::Rest => ("leaf rest", hex(tint(base, 0.78)), "#fff".to_string(), 0.5),
        LeafKind::Twice => (
            "leaf twice",
            TWICE_FILL.to_string(),
            TWICE_STROKE.to_string(),
            1.5,
        ),
    };
    let title = match leaf.kind {
        LeafKind::File => format!(
            "{}: {} bytes ({})",
            leaf.label,
            grouped(leaf.bytes),
            human_bytes(leaf.bytes)
        ),
        LeafKind::Twice => format!(
            "{} file(s), {} bytes ({}), that another attached layer ships too: only the last layer's copy runs",
            leaf.files,
            grouped(leaf.bytes),
            human_bytes(leaf.bytes)
        ),
        LeafKind::Rest => format!(
            "{}: {} bytes ({})",
            leaf.label,
            grouped(leaf.bytes),
            human_bytes(leaf.bytes)
        ),
    };
    put!(
        out,
        "<g class=\"{class}\"><title>{}</title>{}",
        esc(&title),
        rect_tag(&rect, &fill, &stroke, stroke_width)
    );
    if rect.w >= 56.0 && rect.h >= 15.0 {
        let label = match leaf.kind {
            LeafKind::File => leaf.label.rsplit('/').next().unwrap_or(&leaf.label).to_string(),
            LeafKind::Twice => format!("shipped twice: {}", leaf.files),
            LeafKind::Rest => leaf.label.clone(),
        };
        put!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"#1b1f24\" font-size=\"10\">{}</text>",
            num(rect.x + 3.0),
            num(rect.y + 11.0),
            esc(&fit(&label, rect.w - 6.0, 5.7))
        );
    }
    put!(out, "</g>\n");
}

fn visible(rect: &Rect) -> bool {
    rect.w >= 0.1 && rect.h >= 0.1
}

fn rect_tag(rect: &Rect, fill: &str, stroke: &str, stroke_width: f64) -> String {
    format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
        num(rect.x),
        num(rect.y),
        num(rect.w),
        num(rect.h),
        num(stroke_width)
    )
}

/// The colours of the parts, and what the marks mean.
fn legend(out: &mut String, model: &Model, view: &FunctionView) {
    put!(out, "<p class=\"legend\">");
    for part in &view.parts {
        put!(
            out,
            "<span><i class=\"swatch\" style=\"background:{}\"></i>{}</span>",
            hex(colour(model, part)),
            esc(&part_title(part))
        );
    }
    put!(
        out,
        "<span><i class=\"swatch hatch\"></i>unused distribution</span>\
         <span><i class=\"swatch twice\"></i>files another layer ships too</span>\
         <span>red line: AWS's limit; dashed line: the budget</span></p>\n"
    );
}

/// What the layers leave to others, unused distributions, files shipped
/// twice, and what the check said.
fn notes(out: &mut String, view: &FunctionView) {
    let mut items: Vec<(bool, String)> = Vec::new();
    for provided in &view.provided {
        let list = esc(&provided.distributions.join(", "));
        let layer = esc(&provided.layer);
        items.push((
            false,
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
            },
        ));
    }
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
    for twice in &view.twice {
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
        items.push((
            false,
            format!(
                "Shipped twice (red): {} file(s), {} in each of the layers {}; {}'s copy runs: {}{more}.",
                twice.paths.len(),
                human_bytes(twice.bytes / twice.layers.len().max(1) as u64),
                esc(&twice.layers.join(", ")),
                esc(last),
                shown.join(", ")
            ),
        ));
    }
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

/// The same figures as the treemap, as a table for screen readers and
/// copy-paste: the parts (they sum to the total) and the distributions.
fn figures(out: &mut String, view: &FunctionView) {
    let sum: u64 = view.parts.iter().map(|part| part.bytes).sum();
    let total = view.check.map_or(sum, |report| report.total_unzipped_bytes);
    put!(
        out,
        "<table class=\"figures\">\n<caption>{}: bytes unzipped, by part in Lambda's order, with the distributions of each dependency layer</caption>\n\
         <thead><tr><th scope=\"col\">part</th><th scope=\"col\">name</th><th scope=\"col\">version</th>\
         <th scope=\"col\" class=\"num\">bytes</th><th scope=\"col\" class=\"num\">size</th><th scope=\"col\" class=\"num\">share</th>\
         <th scope=\"col\">notes</th></tr></thead>\n<tbody>\n",
        esc(view.name)
    );
    for (index, part) in view.parts.iter().enumerate() {
        let (kind, label) = match part.kind {
            PartKind::Function => ("function", "function code".to_string()),
            _ => ("layer", format!("layer {index}")),
        };
        let note = match part.kind {
            PartKind::Function => format!("{} file(s)", view.entry.zip.files),
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
        if part.kind != PartKind::Dependency {
            continue;
        }
        for (slot, group) in part.groups.iter().enumerate() {
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
                "<tr class=\"sub\"{attributes} data-key=\"p{index}.g{slot}\"><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                if group.distribution { "distribution" } else { "other files" },
                esc(&group.name),
                esc(group.version.as_deref().unwrap_or("")),
                grouped(group.bytes),
                human_bytes(group.bytes),
                percent(group.bytes, total),
                esc(&notes.join("; "))
            );
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

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// `36,017,657`.
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, ch) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `+2.1 MiB`, `−300.0 KiB` (a minus sign), `±0 B`.
pub(super) fn signed_bytes(delta: i64) -> String {
    match delta.signum() {
        0 => "±0 B".to_string(),
        1 => format!("+{}", human_bytes(delta.unsigned_abs())),
        _ => format!("\u{2212}{}", human_bytes(delta.unsigned_abs())),
    }
}

/// `13.7%`.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "—".into();
    }
    format!("{:.1}%", part as f64 / whole as f64 * 100.0)
}

/// A coordinate: one decimal, no `-0.0`.
fn num(value: f64) -> String {
    let text = format!("{value:.1}");
    if text == "-0.0" {
        "0.0".into()
    } else {
        text
    }
}

/// `text` cut to what fits in `width` pixels at about `per_char` each.
fn fit(text: &str, width: f64, per_char: f64) -> String {
    let room = (width / per_char).floor().max(0.0) as usize;
    let count = text.chars().count();
    if count <= room {
        return text.to_string();
    }
    if room < 2 {
        return String::new();
    }
    let kept: String = text.chars().take(room - 1).collect();
    format!("{kept}…")
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// `colour` mixed with white: 0 is the colour, 1 is white.
fn tint((r, g, b): (u8, u8, u8), white: f64) -> (u8, u8, u8) {
    let mix = |c: u8| (c as f64 + (255.0 - c as f64) * white).round() as u8;
    (mix(r), mix(g), mix(b))
}

/// Dark text on light colours, white on dark ones.
fn text_on((r, g, b): (u8, u8, u8)) -> &'static str {
    let luminance = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    if luminance > 150.0 {
        "#1b1f24"
    } else {
        "#fff"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_fixed() {
        assert_eq!(grouped(262_144_000), "262,144,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(signed_bytes(2_202_009), "+2.1 MiB");
        assert_eq!(signed_bytes(-307_200), "\u{2212}300.0 KiB");
        assert_eq!(signed_bytes(0), "±0 B");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(num(-0.01), "0.0");
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(fit("abcdefgh", 30.0, 6.0), "abcd…");
        assert_eq!(fit("abc", 30.0, 6.0), "abc");
        assert_eq!(tint((0, 100, 255), 0.5), (128, 178, 255));
    }
}
