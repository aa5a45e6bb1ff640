//! OSV advisories for PyPI: read from a local export (a folder of OSV
//! JSON records, or the ZIP OSV publishes per ecosystem) or asked of OSV's
//! API through curl, and matched against a distribution's version.
//!
//! The schema: https://ossf.github.io/osv-schema/ (`affected[].ranges` of
//! type `ECOSYSTEM`, evaluated as its "Evaluation" section says), read
//! 2026-12-07. An export is untrusted input: every record is read within a
//! size bound and one that is not an OSV record is an error naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;

mod api;
mod cvss;
mod export;
mod record;

pub use api::{API, API_VARIABLE};
pub use export::DB_VARIABLE;
pub use record::{Advisory, Affected, Answer, Event, Loaded};

/// Where advisories come from.
#[derive(Debug, Clone)]
pub enum Source {
    Export(PathBuf),
    Api(String),
}

impl Source {
    /// `XTASK_OSV_DB` when set, else OSV's API (`XTASK_OSV_API`, or OSV's own).
    pub fn from_env() -> Source {
        match std::env::var_os(DB_VARIABLE).filter(|value| !value.is_empty()) {
            Some(path) => Source::Export(PathBuf::from(path)),
            None => Source::Api(
                std::env::var(API_VARIABLE)
                    .ok()
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| API.to_string()),
            ),
        }
    }

    /// As output and `dist/audit.json` name it: an export by its path in
    /// the repository, else by its file name (no path of this machine).
    pub fn describe(&self, root: &Path) -> String {
        match self {
            Source::Export(path) => {
                let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                let shown = match absolute.strip_prefix(root) {
                    Ok(inside) => inside.display().to_string(),
                    Err(_) => path.file_name().map_or_else(
                        || path.display().to_string(),
                        |name| name.to_string_lossy().into_owned(),
                    ),
                };
                format!("the OSV export {shown} ({DB_VARIABLE})")
            }
            // A mirror's URL may carry a credential: never into dist/audit.json.
            Source::Api(url) => format!("OSV's API at {}", crate::ground::redact::urls(url)),
        }
    }
}

/// The advisories for `wanted` (name → the versions shipped) from `source`.
pub fn load(source: &Source, wanted: &BTreeMap<String, BTreeSet<String>>) -> Result<Answer> {
    match source {
        Source::Export(path) => export::read_export(path, wanted).map(Answer::Loaded),
        Source::Api(url) => api::ask_api(url, wanted),
    }
}
