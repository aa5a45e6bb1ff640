//! `dist/report.html` in a real browser, a stage of `cargo xtask ci`:
//! headless Chromium (Debian's `chromium`, which `provision` installs) loads
//! the report, its DOM after the scripts ran is read back with
//! `--dump-dom` and held against the manifest and check-limits (every
//! function there, nothing else, every total and every row equal), and a
//! screenshot is left under the tool's cache for people to look at.
//!
//! - this file: the stage, from the build's report to its screenshot;
//! - `chromium`: the browser, run headless and bounded;
//! - `page`: the DOM contract read back from the page Chromium dumped;
//! - `contract`: what the page must say, and every way it does not.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use xtask::config::manifest::Manifest;
use xtask::config::Config;
use xtask::ground::progress::human_bytes;

use chromium::file_url;
use contract::{compare, expected, ExpectedFunction};
use page::parse;

mod chromium;
mod contract;
mod page;
#[cfg(test)]
mod tests;

pub(crate) use chromium::run_chromium;
pub use chromium::{find_chromium, CHROMIUM_NAMES};

/// The stage's name in `ci` (and in its list of skipped stages).
pub const STAGE: &str = "report in Chromium";

/// The screenshot's viewport: a desktop width, tall enough for several
/// functions.
const WINDOW_SIZE: &str = "1280,2000";

/// The stage: dist/report.html in headless Chromium, checked against
/// dist/manifest.json and `check-limits --json`, then a screenshot in
/// `target/lambda/report/report.png`.
pub fn report_in_browser(sh: &Shell, config: &Config) -> Result<()> {
    let Some((chromium, version)) = find_chromium() else {
        bail!(
            "no Chromium on PATH ({}): as root, apt-get install chromium",
            CHROMIUM_NAMES.join(", ")
        );
    };
    let report = config.dist_dir().join("report.html");
    if !report.is_file() {
        bail!("{} is missing: the build writes it", report.display());
    }
    let expected = expected_figures(sh, config)?;
    // Beside the report's own history; Chromium's profile, DOM and log in
    // a folder of their own.
    let shots = config.cache_dir().join("report");
    let work = shots.join("chromium");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let url = file_url(&report)?;
    eprintln!("ci: loading {url} in {version} ({})", chromium.display());
    check_dom(&chromium, &work, &url, &expected)?;
    let screenshot = screenshot(&chromium, &work, &shots, url)?;
    eprintln!(
        "ci: report in Chromium: {} functions, every total equal to check-limits' and the manifest's; screenshot: {}",
        expected.len(),
        screenshot.display()
    );
    Ok(())
}

/// What the page must say of each function: the manifest's figures, with
/// check-limits' total and budget.
fn expected_figures(sh: &Shell, config: &Config) -> Result<BTreeMap<String, ExpectedFunction>> {
    let manifest: Manifest = serde_json::from_slice(
        &fs::read(config.manifest_path()).context("the build wrote no dist/manifest.json")?,
    )
    .context("reading dist/manifest.json")?;
    let xtask = crate::checks::xtask_binary(config);
    // Over a limit or not, check-limits prints every function's figures.
    let limits = cmd!(sh, "{xtask} check-limits --json --quiet")
        .ignore_status()
        .read()
        .context("running check-limits --json")?;
    let limits: serde_json::Value =
        serde_json::from_str(&limits).context("reading check-limits --json: not JSON")?;
    expected(&manifest, &limits)
}

/// The DOM Chromium shows after the scripts ran, held against `expected`;
/// each function's figures told when they agree.
fn check_dom(
    chromium: &Path,
    work: &Path,
    url: &str,
    expected: &BTreeMap<String, ExpectedFunction>,
) -> Result<()> {
    let dom = work.join("report.dom.html");
    run_chromium(
        chromium,
        work,
        &["--dump-dom".to_string(), url.to_string()],
        Some(&dom),
    )?;
    let html = fs::read_to_string(&dom).with_context(|| format!("reading {}", dom.display()))?;
    if html.trim().is_empty() {
        bail!("Chromium printed no DOM for {url}");
    }
    let page = parse(&html);
    if let Err(errors) = compare(&page, expected) {
        bail!(
            "dist/report.html as Chromium shows it disagrees with the manifest and check-limits:\n  {}",
            errors.join("\n  ")
        );
    }
    for (name, function) in expected {
        let mut parts = vec![format!("function {}", function.own)];
        parts.extend(
            function
                .layers
                .iter()
                .map(|(layer, bytes)| format!("{layer} {bytes}")),
        );
        eprintln!(
            "ci: report: `{name}` {} = {} bytes, as check-limits and the manifest say",
            human_bytes(function.total),
            parts.join(" + ")
        );
    }
    Ok(())
}

/// `report.png` in `shots`, for people to look at.
fn screenshot(chromium: &Path, work: &Path, shots: &Path, url: String) -> Result<PathBuf> {
    let screenshot = shots.join("report.png");
    let _ = fs::remove_file(&screenshot);
    run_chromium(
        chromium,
        work,
        &[
            format!("--screenshot={}", screenshot.display()),
            format!("--window-size={WINDOW_SIZE}"),
            "--hide-scrollbars".to_string(),
            url,
        ],
        None,
    )?;
    let written = fs::metadata(&screenshot).map(|meta| meta.len()).unwrap_or(0);
    if written == 0 {
        bail!("Chromium wrote no screenshot to {}", screenshot.display());
    }
    Ok(screenshot)
}
