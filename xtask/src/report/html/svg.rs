//! Each function's treemap as SVG: a scale of its bytes against the
//! budget and AWS's limit, then its parts, their groups and their largest
//! files as nested rectangles; and the legend of their colours.

use std::fmt::Write as _;

use super::format::{esc, fit, grouped, hex, num, percent, text_on, tint};
use crate::ground::progress::human_bytes;
use crate::report::groups::{Group, Leaf, LeafKind};
use crate::report::model::{FunctionView, Model, Part, PartKind};
use crate::report::treemap::{squarify, Rect};

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
/// An image's base: a light grey, not the team's to shrink.
const BASE_COLOUR: (u8, u8, u8) = (0xba, 0xb0, 0xac);
const TWICE_FILL: &str = "#f6c1bd";
const TWICE_STROKE: &str = "#b3261e";

fn colour(model: &Model, part: &Part) -> (u8, u8, u8) {
    match part.kind {
        PartKind::Function => FUNCTION_COLOUR,
        PartKind::Base => BASE_COLOUR,
        _ => model
            .colours
            .get(&part.name)
            .map_or(PALETTE[0], |slot| PALETTE[slot % PALETTE.len()]),
    }
}

pub(super) fn treemap(out: &mut String, model: &Model, view: &FunctionView) {
    let sum: u64 = view.parts.iter().map(|part| part.bytes).sum();
    let total = view.check.map_or(sum, |report| report.total_unzipped_bytes);
    let parts: Vec<String> = view
        .parts
        .iter()
        .map(|part| format!("{} {}", part_title(part), human_bytes(part.bytes)))
        .collect();
    let mut label = format!(
        "{}: {} {}; {}; limit {}",
        view.name,
        human_bytes(total),
        if view.image.is_some() {
            "as an image, uncompressed"
        } else {
            "unzipped"
        },
        parts.join(", "),
        human_bytes(view.limit)
    );
    if let Some(budget) = view.budget {
        label.push_str(&format!(", budget {}", human_bytes(budget)));
        if view.image.is_some() {
            label.push_str(" over the base");
        }
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
/// the budget and at AWS's limit. An image's budget counts from the end
/// of its base, the first part: it counts what the team ships.
fn scale(out: &mut String, model: &Model, view: &FunctionView, total: u64) {
    let limit = view.limit;
    let budget_line = view.budget.map(|budget| view.base_bytes + budget);
    let top = limit.max(total).max(budget_line.unwrap_or(0)) as f64;
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
    if let (Some(budget), Some(line)) = (view.budget, budget_line) {
        let budget_x = x(line).clamp(1.0, WIDTH - 1.0);
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
        PartKind::Base => "base image".to_string(),
        _ => format!("layer {}", part.name),
    }
}

/// What a layer is, after its name in a title.
fn kind_name(kind: PartKind) -> &'static str {
    match kind {
        PartKind::Function => "",
        PartKind::Base => ", the base image's layers",
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
pub(super) fn legend(out: &mut String, model: &Model, view: &FunctionView) {
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
         <span>red line: AWS's limit; dashed line: the budget{}</span></p>\n",
        if view.image.is_some() {
            " (counted over the base)"
        } else {
            ""
        }
    );
}
