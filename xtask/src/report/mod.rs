//! The report wing: what a run shows people. Imports every wing below the
//! commands (the graph, the steps, configuration, store, ground floor).
//!
//! - `render`: the text and JSON of commands (plans, tables, verdicts);
//! - this file: writing `dist/report.html` when what it shows changed;
//! - `history`: the previous build and the page last written, kept in
//!   the cache;
//! - `model`: what the page shows, computed once (`groups`: a part's
//!   files as groups and leaves; `changes`: what changed since the
//!   previous, different build);
//! - `html`: the page itself, its HTML, CSS and SVG;
//! - `treemap`: the squarified layout its rectangles come from.
//!
//! `dist/report.html`: one self-contained page about what was built, for
//! people. For each function a treemap of its unzipped bytes (its own
//! code, each attached layer in order, their distributions and largest
//! files; an image function's image layers instead, from its base up, against
//! the image limit, its budget counted over the base) under a scale with
//! AWS's limit and the budget, the same figures
//! as a plain table, what the runtime or a base layer provides instead,
//! unused distributions, files two layers both ship, the init time; and
//! what changed since the previous, different build; and the advisories
//! the last `audit` found, while they describe what ships (`audit`).
//!
//! Nothing here is measured again: sizes and totals are the check
//! reports', versions the manifest's, timings the smoke verdicts'. Only the
//! ZIPs' central directories are read, for the files inside. The page is a
//! function of those and of the previous build (kept in
//! `<cache>/report/history.json`): no clock, no absolute path, stable
//! order and fixed number formats, so the same build writes the same bytes.

use std::collections::BTreeMap;
use std::fs;

use anyhow::{Context, Result};

use crate::config::manifest::Manifest;
use crate::config::Config;
use crate::ground::atomic::write_atomic;
use crate::steps::limits::FunctionReport;
use crate::steps::smoke::Outcome;

use history::{page_inputs, History, Page, Snapshot};
use model::{Listings, Model};

pub mod audit;
mod changes;
mod groups;
mod history;
mod html;
mod model;
pub mod render;
mod treemap;

/// The report's path relative to the repository root, as people see it.
pub const RELATIVE_PATH: &str = "dist/report.html";

/// Writes the report of a whole manifest (only a whole one is written to
/// `dist/`) with the verdicts known for it. Returns whether its bytes
/// changed. The previous build's snapshot is kept in the cache.
pub fn write(
    config: &Config,
    manifest: &Manifest,
    checks: &BTreeMap<String, FunctionReport>,
    smokes: &BTreeMap<String, Outcome>,
) -> Result<bool> {
    let history_path = config.cache_dir().join("report").join("history.json");
    let history = History::load(&history_path);
    let snapshot = Snapshot::new(manifest, checks);
    let mut history = history.advance(snapshot);
    let path = config.report_path();
    // A no-op run has the same inputs: the page it would write is there.
    let advisories = audit::recorded(config, manifest);
    let inputs = page_inputs(manifest, checks, smokes, history.previous.as_ref(), &advisories)?;
    if let Some(page) = &history.page {
        let intact = crate::ground::digest::file_sha256(&path).is_ok_and(|digest| digest.hex == page.sha256);
        if page.inputs == inputs && intact {
            history.save(&history_path)?;
            return Ok(false);
        }
    }
    let listings = Listings::read(&config.root, manifest)?;
    let mut model = Model::new(
        config,
        manifest,
        checks,
        smokes,
        &listings,
        history.previous.as_ref(),
    );
    model.advisories = advisories;
    let page = html::page(&model);
    history.page = Some(Page {
        inputs,
        sha256: crate::ground::digest::bytes_sha256(page.as_bytes()),
    });

    let changed = fs::read(&path).ok().as_deref() != Some(page.as_bytes());
    if changed {
        write_atomic(&path, page.as_bytes()).context("writing the report")?;
    }
    history.save(&history_path)?;
    Ok(changed)
}
