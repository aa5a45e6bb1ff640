//! The inputs of one node as a labelled list, the key made from them, and
//! why a node is stale: the first input whose value differs from the one
//! its last build recorded (`function auth: layers [core, jwt, shared] →
//! [jwt, shared]`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ground::atomic::write_atomic;
use crate::ground::digest::{file_sha256, KeyHasher};

/// Labelled values, in the order they were added. A value is shown to
/// people as it is, unless it is a hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs(pub Vec<(String, String)>);

impl Inputs {
    pub fn add(&mut self, label: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((label.into(), value.into()));
        self
    }

    /// A file by its content and mode, labelled with its path.
    pub fn file(&mut self, label: &str, path: &Path, executable: bool) -> Result<&mut Self> {
        let mode = if executable { "x" } else { "-" };
        let digest = file_sha256(path)?.hex;
        Ok(self.add(format!("file {label}"), format!("{mode}{digest}")))
    }

    /// The value of the first input labelled `label`.
    pub fn value(&self, label: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == label)
            .map(|(_, value)| value.as_str())
    }

    pub fn key(&self) -> String {
        let mut key = KeyHasher::default();
        for (label, value) in &self.0 {
            key.part(label, value);
        }
        key.hex()
    }

    /// Why `self` differs from `before`, in one short phrase.
    pub fn difference(&self, before: &Inputs) -> String {
        let old: BTreeMap<&str, &str> = before.0.iter().map(|(l, v)| (l.as_str(), v.as_str())).collect();
        let new: BTreeMap<&str, &str> = self.0.iter().map(|(l, v)| (l.as_str(), v.as_str())).collect();
        for (label, value) in &self.0 {
            match old.get(label.as_str()) {
                None => return format!("{} added", describe(label)),
                Some(previous) if previous != value => {
                    return if looks_hashed(value) || looks_hashed(previous) {
                        format!("{} changed", describe(label))
                    } else {
                        format!("{label}: {previous} → {value}")
                    };
                }
                _ => {}
            }
        }
        if let Some((label, _)) = before
            .0
            .iter()
            .find(|(label, _)| !new.contains_key(label.as_str()))
        {
            return format!("{} removed", describe(label));
        }
        "inputs as before, but no cache entry".to_string()
    }
}

fn describe(label: &str) -> String {
    label.strip_prefix("file ").unwrap_or(label).to_string()
}

fn looks_hashed(value: &str) -> bool {
    let hex = value.trim_start_matches(['x', '-']);
    hex.len() >= 40 && hex.chars().all(|ch| ch.is_ascii_hexdigit())
}

/// The inputs each node was last built from, by node name: kept only to
/// say why a node is stale.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Records(pub BTreeMap<String, Inputs>);

impl Records {
    pub fn path(cache_dir: &Path) -> std::path::PathBuf {
        cache_dir.join("records.json")
    }

    pub fn load(cache_dir: &Path) -> Records {
        fs::read(Records::path(cache_dir))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, cache_dir: &Path) -> Result<()> {
        write_atomic(&Records::path(cache_dir), &serde_json::to_vec(self)?)
    }
}

/// [`Records`], read only when a node turns out stale: a no-op run never
/// parses them.
pub struct LazyRecords {
    cache_dir: std::path::PathBuf,
    cell: std::sync::OnceLock<Records>,
}

impl LazyRecords {
    pub fn new(cache_dir: &Path) -> LazyRecords {
        LazyRecords {
            cache_dir: cache_dir.to_path_buf(),
            cell: std::sync::OnceLock::new(),
        }
    }

    pub fn get(&self) -> &Records {
        self.cell.get_or_init(|| Records::load(&self.cache_dir))
    }

    pub fn into_inner(self) -> Records {
        self.cell
            .into_inner()
            .unwrap_or_else(|| Records::load(&self.cache_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_difference() {
        let mut before = Inputs::default();
        before.add("handler", "a.h").add("layers", "[core, jwt, shared]");
        let mut after = Inputs::default();
        after.add("handler", "a.h").add("layers", "[jwt, shared]");
        assert_eq!(
            after.difference(&before),
            "layers: [core, jwt, shared] → [jwt, shared]"
        );
        let mut edited = before.clone();
        edited.add("file lambdas/a/h.py", "-".to_string() + &"ab".repeat(32));
        assert_eq!(edited.difference(&before), "lambdas/a/h.py added");
        assert_eq!(before.difference(&edited), "lambdas/a/h.py removed");
        assert_ne!(before.key(), after.key());
    }
}
