//! The page itself: HTML with its CSS, SVG and a few lines of JavaScript
//! inline, nothing fetched. Every figure is written into the HTML (the
//! script only links what the pointer is over in the treemap and the
//! table, and says where each runtime stands on the day the page is read,
//! from the dates the page holds). Numbers have fixed formats, coordinates one decimal.
//!
//! - this file: the page's frame, the overview, the changes and each
//!   function's heading, with the page's CSS and script;
//! - `svg`: each function's treemap, its scale and legend;
//! - `tables`: the notes and the table of figures under it;
//! - `format`: escaping and the fixed number formats.

use std::fmt::Write as _;

use super::audit::Shown;
use super::model::{FunctionView, Model};
use crate::facts;
use crate::ground::progress::{human_bytes, signed_bytes};
use format::{esc, grouped, percent};
use svg::{legend, treemap};
use tables::{figures, notes};

/// `write!` into a String, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        let _ = write!($out, $($arg)*);
    };
}

mod format;
mod svg;
mod tables;

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
  // Where each runtime stands on the day the page is read: the page holds
  // the dates (inputs), the reader's browser the day, so the same inputs
  // still give the same bytes. The names are lifecycle.rs's.
  var today = new Date().toISOString().slice(0, 10);
  var labels = {
    'supported': 'supported',
    'deprecated': 'deprecated',
    'blocked-create': 'deprecated and closed to new functions',
    'blocked-update': 'deprecated and closed to updates'
  };
  document.querySelectorAll('p.lifecycle').forEach(function (p) {
    function reached(name) { var day = p.getAttribute(name); return !!day && day <= today; }
    var status = reached('data-block-update') ? 'blocked-update'
      : reached('data-block-create') ? 'blocked-create'
      : reached('data-deprecation') ? 'deprecated' : 'supported';
    p.setAttribute('data-status', status);
    var label = document.createElement('strong');
    label.className = 'status status-' + status;
    label.textContent = 'Today (' + today + '): ' + labels[status] + '. ';
    p.insertBefore(label, p.firstChild);
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
    let images = if model.functions.iter().any(|view| view.image.is_some()) {
        format!(
            "; {} bytes ({}) uncompressed for a container image, its base included (an image's budget counts all but its base)",
            grouped(facts::MAX_IMAGE_BYTES),
            human_bytes(facts::MAX_IMAGE_BYTES)
        )
    } else {
        String::new()
    };
    put!(
        out,
        "<p class=\"muted\">{} {}, {} function(s). AWS's limit: {} bytes ({}) unzipped for a function with all its layers{images}{budget}. \
         Sizes are bytes once unzipped; 1 MiB = 1,048,576 bytes.</p>\n</header>\n",
        esc(model.runtime),
        esc(model.architecture),
        model.functions.len(),
        grouped(facts::MAX_UNZIPPED_BYTES),
        human_bytes(facts::MAX_UNZIPPED_BYTES),
    );
    overview(&mut out, model);
    advisories(&mut out, model);
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
                (Some(total), Some(budget)) => percent(total.saturating_sub(view.base_bytes), budget),
                _ => "—".into(),
            },
            total.map_or_else(|| "—".into(), |total| percent(total, view.limit)),
            init_time(view),
            check_badge(view),
            smoke_badge(view),
            name = esc(view.name),
        );
    }
    put!(out, "</tbody>\n</table>\n");
}

/// What the last `audit` found, when it checked this very build.
fn advisories(out: &mut String, model: &Model) {
    let outcome = match &model.advisories {
        Shown::Audited(outcome) => outcome,
        Shown::NotAudited => {
            put!(
                out,
                "<section id=\"advisories\" data-audited=\"false\">\n<h2>Advisories</h2>\n\
                 <p class=\"muted\">Not audited: <code>cargo xtask audit</code> checks what ships against OSV's advisories.</p>\n</section>\n"
            );
            return;
        }
        Shown::Stale { checked_on } => {
            put!(
                out,
                "<section id=\"advisories\" data-audited=\"false\">\n<h2>Advisories</h2>\n\
                 <p class=\"muted\">The last audit ({}) checked another build: run <code>cargo xtask audit</code> again.</p>\n</section>\n",
                esc(checked_on)
            );
            return;
        }
    };
    let failing = outcome.findings.iter().filter(|finding| finding.fails).count();
    put!(
        out,
        "<section id=\"advisories\" data-audited=\"true\" data-findings=\"{}\" data-failing=\"{failing}\">\n<h2>Advisories</h2>\n\
         <p class=\"muted\">Checked on {} against {}: {} distribution(s) of {} function(s); threshold {}.</p>\n",
        outcome.findings.len(),
        esc(&outcome.checked_on),
        esc(&outcome.source),
        outcome.distributions,
        outcome.functions.len(),
        esc(outcome.deny.as_deref().unwrap_or("none")),
    );
    if outcome.findings.is_empty() {
        put!(out, "<p>No advisory affects what ships.</p>\n</section>\n");
        return;
    }
    put!(
        out,
        "<table class=\"advisories\">\n<thead><tr><th scope=\"col\">severity</th><th scope=\"col\">advisory</th>\
         <th scope=\"col\">distribution</th><th scope=\"col\">functions</th><th scope=\"col\">layers</th>\
         <th scope=\"col\">fixed in</th><th scope=\"col\">status</th></tr></thead>\n<tbody>\n"
    );
    for finding in &outcome.findings {
        let aliases = if finding.aliases.is_empty() {
            String::new()
        } else {
            format!(
                " <span class=\"muted\">({})</span>",
                esc(&finding.aliases.join(", "))
            )
        };
        let status = match &finding.ignored {
            _ if finding.fails => "<span class=\"badge bad\">fails</span>".to_string(),
            Some(ignore) if !ignore.expired => {
                format!("ignored until {}: {}", esc(&ignore.until), esc(&ignore.reason))
            }
            _ => "shown".to_string(),
        };
        let fixed = if finding.fixed.is_empty() {
            "—".to_string()
        } else {
            esc(&finding.fixed.join(", "))
        };
        put!(
            out,
            "<tr data-id=\"{id}\" data-severity=\"{severity}\"><td>{severity}</td><td><code>{id}</code>{aliases}<br>{summary}</td>\
             <td>{} {}</td><td>{}</td><td>{}</td><td>{fixed}</td><td>{status}</td></tr>\n",
            esc(&finding.distribution),
            esc(&finding.version),
            esc(&finding.functions.join(", ")),
            esc(&finding.layers.join(", ")),
            id = esc(&finding.id),
            severity = esc(&finding.severity),
            summary = esc(&finding.summary),
        );
    }
    put!(out, "</tbody>\n</table>\n</section>\n");
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
        view.limit,
        view.budget.map(|budget| budget.to_string()).unwrap_or_default(),
        check_badge(view),
        smoke_badge(view),
        name = esc(view.name),
    );
    let size = match (total, view.image) {
        (Some(total), Some(_)) => {
            let own = total.saturating_sub(view.base_bytes);
            let budget = view
                .budget
                .map(|budget| format!("{} of the {} budget, ", percent(own, budget), human_bytes(budget)))
                .unwrap_or_default();
            format!(
                "{} bytes ({}) uncompressed as a container image, its base's {} included; its own layers {}: {budget}{} of Lambda's image limit",
                grouped(total),
                human_bytes(total),
                human_bytes(view.base_bytes),
                human_bytes(own),
                percent(total, view.limit)
            )
        }
        (Some(total), None) => {
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
        (None, _) => {
            "not checked yet: run <code>cargo xtask check-limits</code> (sizes below are the manifest's)"
                .into()
        }
    };
    let size = match view.image {
        Some(image) => {
            let at = match &image.uri {
                Some(uri) => format!("pushed as <code>{}</code>", esc(uri)),
                None => format!("<code>{}</code>, not pushed yet", esc(&image.digest)),
            };
            format!("{size}. Image {at}, on <code>{}</code>", esc(&image.base))
        }
        None => size,
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
    lifecycle(out, &view.entry.runtime);
    what_ships(out, view);
    treemap(out, model, view);
    legend(out, model, view);
    notes(out, view);
    figures(out, view);
    put!(out, "</section>\n");
}

/// The function's runtime's lifecycle dates: inputs (the tool's facts),
/// never its status on a day, as the page holds no clock; the build's
/// warning says where the runtime stands on the day it ran. No link to the
/// table either: the page fetches and points at nothing outside itself.
fn lifecycle(out: &mut String, runtime: &str) {
    let Some(runtime) = facts::Runtime::find(runtime) else {
        return;
    };
    let dates = runtime.lifecycle;
    let attribute = |date: Option<facts::Day>| date.map(crate::ground::utc::format_day).unwrap_or_default();
    let from = |date: Option<facts::Day>| match date {
        Some(date) => format!("from {}", crate::ground::utc::format_day(date)),
        None => "from a date not yet published".to_string(),
    };
    put!(
        out,
        "<p class=\"lifecycle muted\" data-runtime=\"{}\" data-deprecation=\"{}\" data-block-create=\"{}\" data-block-update=\"{}\">\
         Runtime {}: deprecated {}; creating functions on it blocked {}, updating them {} \
         (AWS's runtime table, read {}). The build warns once it is deprecated and stops once updates are blocked, \
         unless <code>allow_deprecated_runtime</code> is set.</p>\n",
        esc(runtime.name),
        attribute(dates.deprecation),
        attribute(dates.block_create),
        attribute(dates.block_update),
        esc(runtime.name),
        from(dates.deprecation),
        from(dates.block_create),
        from(dates.block_update),
        crate::ground::utc::format_day(facts::RUNTIME_LIFECYCLE_READ),
    );
}

/// The link to the function's SBOM (beside the page in `dist/`) and how
/// many of its distributions declare each licence.
fn what_ships(out: &mut String, view: &FunctionView) {
    let counts: Vec<String> = view
        .licenses
        .iter()
        .map(|(license, count)| match license {
            Some(license) => format!("<code>{}</code> {count}", esc(license)),
            None => format!("no licence declared {count}"),
        })
        .collect();
    let licenses = if counts.is_empty() {
        "no third-party distributions".to_string()
    } else {
        format!("licences: {}", counts.join(", "))
    };
    put!(
        out,
        "<p class=\"ships\">What ships: <a class=\"sbom\" href=\"sbom/{name}.cdx.json\">SBOM</a> \
         (CycloneDX); {licenses}.</p>\n",
        name = esc(view.name),
    );
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
