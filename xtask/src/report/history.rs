//! What a report remembers between builds (`<cache>/report/history.json`):
//! the build the last page described, the last different one before it
//! (what "changes" compares with), and what the page last written was made
//! from, so that a no-op run does not write it again.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::audit::Shown;
use crate::config::manifest::Manifest;
use crate::ground::atomic::write_atomic;
use crate::steps::limits::FunctionReport;
use crate::steps::smoke::Outcome;

/// Bumped whenever the page for the same inputs changes, so that a page an
/// older tool wrote is written again.
const PAGE_FORMAT: &str = "1";

/// What the comparison of the next report needs of a build: its manifest
/// and each function's total as its check measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Snapshot {
    pub(super) manifest: Manifest,
    pub(super) totals: BTreeMap<String, u64>,
}

impl Snapshot {
    pub(super) fn new(manifest: &Manifest, checks: &BTreeMap<String, FunctionReport>) -> Snapshot {
        Snapshot {
            manifest: manifest.clone(),
            totals: checks
                .iter()
                .filter(|(name, _)| manifest.functions.contains_key(*name))
                .map(|(name, report)| (name.clone(), report.total_unzipped_bytes))
                .collect(),
        }
    }
}

/// The build the last report described, and the last one before it whose
/// manifest was different: what "changes" compares with.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct History {
    current: Option<Snapshot>,
    pub(super) previous: Option<Snapshot>,
    /// The page last written.
    #[serde(default)]
    pub(super) page: Option<Page>,
}

/// What the page last written was made from, and its hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Page {
    pub(super) inputs: String,
    pub(super) sha256: String,
}

/// Everything the page is a function of, hashed.
pub(super) fn page_inputs(
    manifest: &Manifest,
    checks: &BTreeMap<String, FunctionReport>,
    smokes: &BTreeMap<String, Outcome>,
    previous: Option<&Snapshot>,
    advisories: &Shown,
) -> Result<String> {
    let mut hasher = crate::ground::digest::KeyHasher::default();
    hasher
        .part("format", PAGE_FORMAT)
        .part("manifest", serde_json::to_vec(manifest)?)
        .part("checks", serde_json::to_vec(checks)?)
        .part("smokes", serde_json::to_vec(smokes)?)
        .part("previous", serde_json::to_vec(&previous)?)
        .part("advisories", serde_json::to_vec(advisories)?);
    Ok(hasher.hex())
}

impl History {
    /// An unreadable or older history is no history.
    pub(super) fn load(path: &Path) -> History {
        fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The history once `snapshot` is the current build: the current one
    /// becomes the previous only when the manifest differs. Totals are a
    /// function of the manifest, so those known before are kept.
    pub(super) fn advance(self, snapshot: Snapshot) -> History {
        let page = self.page;
        match self.current {
            Some(mut current) if current.manifest == snapshot.manifest => {
                current.totals.extend(snapshot.totals);
                History {
                    current: Some(current),
                    previous: self.previous,
                    page,
                }
            }
            Some(current) => History {
                current: Some(snapshot),
                previous: Some(current),
                page,
            },
            None => History {
                current: Some(snapshot),
                previous: None,
                page,
            },
        }
    }

    pub(super) fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self)?;
        if fs::read(path).ok().as_deref() != Some(bytes.as_slice()) {
            write_atomic(path, &bytes).context("keeping the build for the next report's comparison")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(version: &str) -> Snapshot {
        let manifest = Manifest {
            runtime: version.to_string(),
            ..Manifest::default()
        };
        Snapshot {
            manifest,
            totals: BTreeMap::new(),
        }
    }

    #[test]
    fn the_history_keeps_the_last_different_build() {
        let history = History::default().advance(snapshot("a"));
        assert!(history.previous.is_none());
        let history = history.advance(snapshot("a"));
        assert!(history.previous.is_none(), "the same build is no change");
        let history = history.advance(snapshot("b"));
        assert_eq!(history.previous.as_ref().unwrap().manifest.runtime, "a");
        let mut same = snapshot("b");
        same.totals.insert("f".into(), 7);
        let history = history.advance(same);
        assert_eq!(history.previous.as_ref().unwrap().manifest.runtime, "a", "kept");
        assert_eq!(history.current.as_ref().unwrap().totals["f"], 7, "totals learnt");
    }
}
