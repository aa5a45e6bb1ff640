//! How a part's files become the groups and leaves the page draws: a
//! dependency layer by distribution, application code by top-level
//! module, and in each group its largest files, what another layer ships
//! too, and the rest.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::manifest::LayerEntry;
use crate::facts::normalize_dist_name;
use crate::store::archive::Listed;

/// How many files of a distribution get their own rectangle and row.
const LARGEST_FILES: usize = 4;

/// A distribution of a dependency layer, a top-level module of application
/// code, or what no distribution claims.
pub(crate) struct Group {
    pub name: String,
    pub version: Option<String>,
    pub distribution: bool,
    pub bytes: u64,
    pub files: usize,
    pub unused: bool,
    pub twice_files: usize,
    pub twice_bytes: u64,
    pub leaves: Vec<Leaf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LeafKind {
    File,
    /// Its files that another attached layer ships too.
    Twice,
    /// The rest of the group.
    Rest,
}

pub(crate) struct Leaf {
    pub kind: LeafKind,
    pub label: String,
    pub files: usize,
    pub bytes: u64,
}

/// The name a file is imported by: `pkg/mod.py` → `pkg`, `mod.py` → `mod`,
/// `_ext.cpython-311-x86_64-linux-gnu.so` → `_ext`,
/// `__pycache__/mod.cpython-311.pyc` → `mod`.
fn module_key(path: &str) -> &str {
    let mut parts = path.split('/');
    let first = parts.next().unwrap_or(path);
    if first == "__pycache__" {
        let file = path.rsplit('/').next().unwrap_or(path);
        return file.split('.').next().unwrap_or(file);
    }
    if path.contains('/') {
        first
    } else {
        first
            .split('.')
            .next()
            .filter(|stem| !stem.is_empty())
            .unwrap_or(first)
    }
}

/// Application code (a function's ZIP, a source layer) by top-level module.
pub(super) fn code_groups(files: &[Listed], prefix: &str, is_twice: &dyn Fn(&str) -> bool) -> Vec<Group> {
    let mut by_module: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for file in files {
        let inner = file.path.strip_prefix(prefix).unwrap_or(&file.path);
        by_module.entry(module_key(inner)).or_default().push(file);
    }
    let mut groups: Vec<Group> = by_module
        .into_iter()
        .map(|(module, files)| {
            let bytes = files.iter().map(|file| file.size).sum();
            group(module.to_string(), None, false, bytes, false, files, is_twice)
        })
        .collect();
    sort_groups(&mut groups);
    groups
}

/// A dependency layer by distribution (the manifest's sizes), its files
/// attributed by their top-level name, and what no distribution claims.
pub(super) fn distribution_groups(
    layer: &str,
    entry: &LayerEntry,
    layer_bytes: u64,
    files: &[Listed],
    unused: &BTreeSet<(String, String)>,
    is_twice: &dyn Fn(&str) -> bool,
) -> Vec<Group> {
    let mut by_top: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for (index, package) in entry.packages.iter().enumerate() {
        by_name.insert(normalize_dist_name(&package.name), index);
        for top in &package.top_level {
            by_top.entry(top.as_str()).or_insert(index);
        }
    }
    let mut owned: Vec<Vec<&Listed>> = vec![Vec::new(); entry.packages.len()];
    let mut unclaimed = Vec::new();
    for file in files {
        let inner = file.path.strip_prefix("python/").unwrap_or(&file.path);
        let first = inner.split('/').next().unwrap_or(inner);
        let owner = if let Some(stem) = first.strip_suffix(".dist-info") {
            let name = stem.split_once('-').map_or(stem, |(name, _)| name);
            by_name.get(&normalize_dist_name(name)).copied()
        } else if let Some(stem) = first.strip_suffix(".libs") {
            by_name.get(&normalize_dist_name(stem)).copied()
        } else {
            by_top.get(module_key(inner)).copied()
        };
        match owner {
            Some(index) => owned[index].push(file),
            None => unclaimed.push(file),
        }
    }
    let mut groups: Vec<Group> = entry
        .packages
        .iter()
        .zip(owned)
        .map(|(package, files)| {
            let is_unused = unused.contains(&(layer.to_string(), normalize_dist_name(&package.name)));
            group(
                package.name.clone(),
                Some(package.version.clone()),
                true,
                package.unzipped_bytes,
                is_unused,
                files,
                is_twice,
            )
        })
        .collect();
    sort_groups(&mut groups);
    let claimed: u64 = entry.packages.iter().map(|package| package.unzipped_bytes).sum();
    let rest = layer_bytes.saturating_sub(claimed);
    if rest > 0 {
        groups.push(group(
            "(no distribution)".to_string(),
            None,
            false,
            rest,
            false,
            unclaimed,
            is_twice,
        ));
    }
    groups
}

/// Largest first, then by name.
fn sort_groups(groups: &mut [Group]) {
    groups.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
}

/// A group of `bytes` with its largest files, those another layer ships
/// too, and the rest.
fn group(
    name: String,
    version: Option<String>,
    distribution: bool,
    bytes: u64,
    unused: bool,
    mut files: Vec<&Listed>,
    is_twice: &dyn Fn(&str) -> bool,
) -> Group {
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
    let count = files.len();
    let (twice, single): (Vec<&Listed>, Vec<&Listed>) =
        files.into_iter().partition(|file| is_twice(&file.path));
    let twice_bytes: u64 = twice.iter().map(|file| file.size).sum();
    let mut leaves: Vec<Leaf> = single
        .iter()
        .take(LARGEST_FILES)
        .filter(|file| file.size > 0)
        .map(|file| Leaf {
            kind: LeafKind::File,
            label: file.path.clone(),
            files: 1,
            bytes: file.size,
        })
        .collect();
    if !twice.is_empty() {
        leaves.push(Leaf {
            kind: LeafKind::Twice,
            label: "shipped twice".to_string(),
            files: twice.len(),
            bytes: twice_bytes,
        });
    }
    let shown: u64 = leaves.iter().map(|leaf| leaf.bytes).sum();
    let shown_files: usize = leaves.iter().map(|leaf| leaf.files).sum();
    let rest = bytes.saturating_sub(shown);
    if rest > 0 && !leaves.is_empty() {
        let others = count.saturating_sub(shown_files);
        leaves.push(Leaf {
            kind: LeafKind::Rest,
            label: format!("{others} other file(s)"),
            files: others,
            bytes: rest,
        });
    }
    Group {
        name,
        version,
        distribution,
        bytes,
        files: count,
        unused,
        twice_files: twice.len(),
        twice_bytes,
        leaves,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, size: u64) -> Listed {
        Listed {
            path: path.to_string(),
            size,
        }
    }

    #[test]
    fn module_keys() {
        assert_eq!(module_key("pkg/sub/mod.pyc"), "pkg");
        assert_eq!(module_key("mod.py"), "mod");
        assert_eq!(
            module_key("_cffi_backend.cpython-311-x86_64-linux-gnu.so"),
            "_cffi_backend"
        );
        assert_eq!(module_key("__pycache__/handler.cpython-311.pyc"), "handler");
        assert_eq!(module_key(".hidden"), ".hidden");
    }

    #[test]
    fn a_group_shows_its_largest_files_what_ships_twice_and_the_rest() {
        let files = [
            listed("a/1", 50),
            listed("a/2", 40),
            listed("a/3", 30),
            listed("a/4", 20),
            listed("a/5", 10),
            listed("a/6", 5),
            listed("a/dup", 25),
        ];
        let group = group(
            "a".into(),
            None,
            false,
            200,
            false,
            files.iter().collect(),
            &|path| path == "a/dup",
        );
        let leaves: Vec<(LeafKind, &str, u64)> = group
            .leaves
            .iter()
            .map(|leaf| (leaf.kind, leaf.label.as_str(), leaf.bytes))
            .collect();
        assert_eq!(
            leaves,
            vec![
                (LeafKind::File, "a/1", 50),
                (LeafKind::File, "a/2", 40),
                (LeafKind::File, "a/3", 30),
                (LeafKind::File, "a/4", 20),
                (LeafKind::Twice, "shipped twice", 25),
                (LeafKind::Rest, "2 other file(s)", 35),
            ]
        );
        assert_eq!((group.files, group.twice_files, group.twice_bytes), (7, 1, 25));
        let total: u64 = group.leaves.iter().map(|leaf| leaf.bytes).sum();
        assert_eq!(total, group.bytes, "the leaves fill the group");
    }
}
