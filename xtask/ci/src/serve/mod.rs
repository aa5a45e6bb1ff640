//! `cargo xtask serve` on the example application, tested with real
//! clients: three stages of `cargo xtask ci`, each starting serve once
//! (`--fakes --port 0 --builder host --runner host`), reading its address
//! from its first line of stdout and stopping it on every way out.
//!
//! - this file: the stages' names and what they share;
//! - `process`: serve and the page server, started and stopped;
//! - `cases`: "serve: every sample case", send.py and the property;
//! - `events`: an event serve sent against the committed one;
//! - `responses`: a response through serve against the function's answer;
//! - `diff`: two JSON values compared, a line per difference;
//! - `session`: "serve: curl session";
//! - `clients`: curl, urllib.request and the tokens they carry;
//! - `cors`: "serve: CORS in Chromium".

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Result};

use xtask::config::Config;

mod cases;
mod clients;
mod cors;
mod diff;
mod events;
mod minted;
mod process;
mod responses;
mod session;
#[cfg(test)]
mod tests;

pub use cases::every_case;
pub use cors::cors_in_chromium;
pub use session::curl_session;

/// The stages' names in `ci`; provisioning skips the last two by these
/// names on a machine without curl or Chromium.
pub const CASES_STAGE: &str = "serve: every sample case";
pub const CURL_STAGE: &str = "serve: curl session";
pub const CORS_STAGE: &str = "serve: CORS in Chromium";

/// A fresh folder under the tool's cache for one stage's files (serve's
/// log, saved events, pages), removed when the stage passes.
fn fresh_dir(config: &Config, name: &str) -> Result<PathBuf> {
    let dir = config.cache_dir().join("ci").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// How many differences of the first mismatch are shown.
const SHOWN_DIFFERENCES: usize = 25;

/// Fails with the first mismatch shown whole (as a diff, one line per
/// difference) and the others named.
fn report_mismatches(what: &str, total: usize, mismatches: &[(String, Vec<String>)]) -> Result<()> {
    let Some((first, differences)) = mismatches.first() else {
        return Ok(());
    };
    let mut text = format!(
        "{what}: {} of {total} differ; the first, {first}:\n",
        mismatches.len()
    );
    for difference in differences.iter().take(SHOWN_DIFFERENCES) {
        text.push_str(&format!("  {difference}\n"));
    }
    if differences.len() > SHOWN_DIFFERENCES {
        text.push_str(&format!(
            "  … and {} more\n",
            differences.len() - SHOWN_DIFFERENCES
        ));
    }
    if mismatches.len() > 1 {
        let others: Vec<&str> = mismatches[1..]
            .iter()
            .map(|(title, _)| title.split(':').next().unwrap_or(title))
            .collect();
        text.push_str(&format!("the others: {}", others.join(", ")));
    }
    bail!("{}", text.trim_end())
}
