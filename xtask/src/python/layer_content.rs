//! What goes into a dependency layer once the installer is done: the
//! runtime-provided distributions removed (also when they came in
//! transitively), installer leftovers and bytecode stripped, `*.dist-info`
//! kept, and an inventory of the distributions with their sizes and the
//! top-level names they make importable.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::manifest::Package;
use crate::facts::normalize_dist_name;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Largest first.
    pub packages: Vec<Package>,
    /// Distributions removed because the runtime provides them, as `name==version`.
    pub excluded: Vec<String>,
}

/// Names at the top of the installed tree that are installer leftovers.
const LEFTOVERS: &[&str] = &["bin", ".lock"];
/// Files inside `*.dist-info` that describe one install, not the package:
/// local paths, cache timestamps, which installer wrote it and whether the
/// package was asked for by name. They differ between machines, runs and
/// installers (uv marks every distribution REQUESTED, pip only the named ones).
const INSTALL_RECORDS: &[&str] = &["direct_url.json", "uv_cache.json", "INSTALLER", "REQUESTED"];

struct Dist {
    name: String,
    version: String,
    requires: Vec<String>,
    license: Option<String>,
    dist_info: PathBuf,
    files: Vec<PathBuf>,
}

/// Cleans `site` (the layer's `python/` directory) in place and inventories it.
pub fn prepare(site: &Path, exclude: &[String]) -> Result<Inventory> {
    let mut excluded = Vec::new();
    for dist in read_dists(site)? {
        if exclude.contains(&normalize_dist_name(&dist.name)) {
            remove_dist(site, &dist)?;
            excluded.push(format!("{}=={}", dist.name, dist.version));
        }
    }
    excluded.sort();
    for name in LEFTOVERS {
        remove_any(&site.join(name))?;
    }
    strip_tree(site)?;
    for dist in read_dists(site)? {
        rewrite_record(site, &dist)?;
    }
    Ok(Inventory {
        packages: inventory(site)?,
        excluded,
    })
}

/// The distributions in `site` with their sizes, largest first.
pub fn inventory(site: &Path) -> Result<Vec<Package>> {
    let mut packages = Vec::new();
    for dist in read_dists(site)? {
        let mut unzipped_bytes = 0;
        let mut top_level = BTreeSet::new();
        for file in &dist.files {
            // Only what is still there counts: leftovers such as `bin/` are gone.
            let Ok(metadata) = fs::metadata(site.join(file)) else {
                continue;
            };
            unzipped_bytes += metadata.len();
            if let Some(name) = importable_top_level(file) {
                top_level.insert(name);
            }
        }
        if let Ok(text) = fs::read_to_string(dist.dist_info.join("top_level.txt")) {
            top_level.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| is_identifier(line))
                    .map(str::to_string),
            );
        }
        packages.push(Package {
            name: dist.name,
            version: dist.version,
            unzipped_bytes,
            top_level: top_level.into_iter().collect(),
            requires: dist.requires,
            license: dist.license,
        });
    }
    packages.sort_by(|a, b| {
        b.unzipped_bytes
            .cmp(&a.unzipped_bytes)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(packages)
}

fn read_dists(site: &Path) -> Result<Vec<Dist>> {
    let mut dists = Vec::new();
    let Ok(items) = fs::read_dir(site) else {
        return Ok(dists);
    };
    let mut names: Vec<PathBuf> = items.flatten().map(|item| item.path()).collect();
    names.sort();
    for dist_info in names {
        let is_dist_info = dist_info.extension().is_some_and(|ext| ext == "dist-info") && dist_info.is_dir();
        if !is_dist_info {
            continue;
        }
        let text = fs::read_to_string(dist_info.join("METADATA"))
            .with_context(|| format!("reading {}/METADATA", dist_info.display()))?;
        let metadata = DistMetadata::parse(&text);
        if metadata.name.is_empty() {
            anyhow::bail!("{}/METADATA has no Name", dist_info.display());
        }
        let license = metadata.license_declared();
        let DistMetadata {
            name,
            version,
            requires,
            ..
        } = metadata;
        let record = fs::read_to_string(dist_info.join("RECORD")).unwrap_or_default();
        let files = record
            .lines()
            .filter_map(record_path)
            .filter(|path| path.components().all(|c| matches!(c, Component::Normal(_))))
            .collect();
        dists.push(Dist {
            name,
            version,
            requires,
            license,
            dist_info,
            files,
        });
    }
    Ok(dists)
}

/// What a distribution's `METADATA` says of itself, from its header (the
/// lines before the first empty one): read here for the inventory and by
/// the SBOM for the licence, one parser for both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistMetadata {
    /// Empty when the header has no `Name`.
    pub name: String,
    pub version: String,
    /// Every `Requires-Dist` name, normalised, sorted, once each.
    pub requires: Vec<String>,
    /// `License-Expression` (PEP 639): an SPDX expression.
    pub license_expression: Option<String>,
    /// Every `Classifier: License :: …`, as written.
    pub license_classifiers: Vec<String>,
    /// The first line of the free-text `License` field, when it has one.
    pub license: Option<String>,
}

impl DistMetadata {
    pub fn parse(text: &str) -> DistMetadata {
        let header: Vec<&str> = text.lines().take_while(|line| !line.is_empty()).collect();
        let values = |key: &'static str| {
            header
                .iter()
                .filter_map(move |line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
                .map(|value| value.trim().to_string())
        };
        let first = |key: &'static str| values(key).next().filter(|value| !value.is_empty());
        let mut requires: Vec<String> = values("Requires-Dist")
            .filter_map(|requirement| {
                let name = requirement
                    .split(|ch: char| " ;[(<>=!~".contains(ch))
                    .next()?
                    .to_string();
                (!name.is_empty()).then(|| normalize_dist_name(&name))
            })
            .collect();
        requires.sort();
        requires.dedup();
        DistMetadata {
            name: first("Name").unwrap_or_default(),
            version: first("Version").unwrap_or_default(),
            requires,
            license_expression: first("License-Expression"),
            license_classifiers: values("Classifier")
                .filter(|classifier| classifier.starts_with("License ::"))
                .collect(),
            license: first("License"),
        }
    }

    /// The licence it declares: the `License-Expression`; else its licence
    /// classifiers, as SPDX ids joined by `AND` where each names one
    /// licence (else as written, its last part); else the first line of
    /// `License` (free text, often a whole licence's first line).
    pub fn license_declared(&self) -> Option<String> {
        if let Some(expression) = &self.license_expression {
            return Some(expression.clone());
        }
        if !self.license_classifiers.is_empty() {
            let mut names: Vec<String> = self
                .license_classifiers
                .iter()
                .map(|classifier| match classifier_spdx(classifier) {
                    Some(id) => id.to_string(),
                    None => classifier
                        .rsplit("::")
                        .next()
                        .unwrap_or(classifier)
                        .trim()
                        .to_string(),
                })
                .collect();
            names.sort();
            names.dedup();
            return Some(names.join(" AND "));
        }
        self.license.clone()
    }
}

/// The SPDX id of a trove licence classifier that names exactly one
/// licence (`BSD License`, `Apache Software License` or the GNU ones name a
/// family, not a version or whether later ones apply, and stay as written). Source: https://pypi.org/classifiers/
/// and https://spdx.org/licenses/
fn classifier_spdx(classifier: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("MIT License", "MIT"),
        ("MIT No Attribution License (MIT-0)", "MIT-0"),
        ("ISC License (ISCL)", "ISC"),
        ("Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
        ("Python Software Foundation License", "PSF-2.0"),
        ("The Unlicense (Unlicense)", "Unlicense"),
        ("Zero-Clause BSD (0BSD)", "0BSD"),
        ("Eclipse Public License 2.0 (EPL-2.0)", "EPL-2.0"),
    ];
    let last = classifier.rsplit("::").next()?.trim();
    TABLE.iter().find(|(name, _)| *name == last).map(|(_, id)| *id)
}

/// The path of a RECORD line (`path,hash,size`; the path may be quoted).
fn record_path(line: &str) -> Option<PathBuf> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let path = if let Some(rest) = line.strip_prefix('"') {
        rest.split_once('"')?.0.to_string()
    } else {
        line.rsplitn(3, ',').last()?.to_string()
    };
    Some(PathBuf::from(path))
}

/// Drops the RECORD lines of files that were stripped, so that RECORD
/// describes what ships (and no install-specific hash survives in it).
fn rewrite_record(site: &Path, dist: &Dist) -> Result<()> {
    let path = dist.dist_info.join("RECORD");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| match record_path(line) {
            None => false,
            Some(file) => {
                let inside = file.components().all(|c| matches!(c, Component::Normal(_)));
                inside && fs::symlink_metadata(site.join(&file)).is_ok()
            }
        })
        .collect();
    let mut rewritten = kept.join("\n");
    rewritten.push('\n');
    if rewritten != text {
        // Unlink first: the installer may have hard-linked the file from its cache.
        fs::remove_file(&path).with_context(|| format!("replacing {}", path.display()))?;
        fs::write(&path, rewritten).with_context(|| format!("rewriting {}", path.display()))?;
    }
    Ok(())
}

/// Makes every RECORD describe what ships after the layer was finished:
/// each listed file's hash and size as it is now, a source compiled away
/// (`sourceless`) listed as its `.pyc`, the bytecode compiled beside a
/// source listed after it, and files that were removed left out.
pub fn refresh_records(site: &Path) -> Result<()> {
    for dist in read_dists(site)? {
        let mut lines = Vec::new();
        for file in shipped_files(site, &dist.files)? {
            let name = file.to_string_lossy().into_owned();
            let quoted = if name.contains(',') || name.contains('"') {
                format!("\"{}\"", name.replace('"', "\"\""))
            } else {
                name
            };
            if file.file_name().is_some_and(|name| name == "RECORD") {
                lines.push(format!("{quoted},,"));
                continue;
            }
            let path = site.join(&file);
            let digest = crate::ground::digest::file_sha256(&path)?;
            let hash = digest.base64.replace('+', "-").replace('/', "_");
            let size = fs::metadata(&path)?.len();
            lines.push(format!("{quoted},sha256={},{size}", hash.trim_end_matches('=')));
        }
        let record = dist.dist_info.join("RECORD");
        let mut text = lines.join("\n");
        text.push('\n');
        if fs::read_to_string(&record).ok().as_deref() != Some(text.as_str()) {
            // Unlink first: the installer may have hard-linked the file from its cache.
            remove_any(&record)?;
            fs::write(&record, text).with_context(|| format!("rewriting {}", record.display()))?;
        }
    }
    Ok(())
}

/// What of a distribution whose RECORD lists `files` (relative to `site`)
/// is in `site` now, in RECORD's order: each listed file that is there, a
/// source compiled away (`sourceless`) as its `.pyc`, and the bytecode
/// compiled beside a source (`__pycache__/mod.cpython-311.pyc`) after it.
pub fn shipped_files(site: &Path, files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut shipped = Vec::new();
    let mut listed = BTreeSet::new();
    let mut push = |file: PathBuf, shipped: &mut Vec<PathBuf>| {
        if listed.insert(file.clone()) {
            shipped.push(file);
        }
    };
    for file in files {
        let path = site.join(file);
        let is_source = file.extension().is_some_and(|ext| ext == "py");
        if path.is_file() {
            push(file.clone(), &mut shipped);
        } else if is_source && path.with_extension("pyc").is_file() {
            push(file.with_extension("pyc"), &mut shipped);
        }
        let (Some(parent), Some(stem)) = (file.parent(), file.file_stem()) else {
            continue;
        };
        let cache = site.join(parent).join("__pycache__");
        if !is_source || !cache.is_dir() {
            continue;
        }
        let prefix = format!("{}.", stem.to_string_lossy());
        let mut compiled: Vec<PathBuf> = fs::read_dir(&cache)
            .with_context(|| format!("listing {}", cache.display()))?
            .flatten()
            .map(|item| item.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix) && name.ends_with(".pyc"))
            .filter(|name| name[prefix.len()..].matches('.').count() == 1)
            .map(|name| parent.join("__pycache__").join(name))
            .collect();
        compiled.sort();
        for pyc in compiled {
            push(pyc, &mut shipped);
        }
    }
    Ok(shipped)
}

/// One distribution of a site: what its RECORD lists, relative to the site.
#[derive(Debug, Clone)]
pub struct DistFiles {
    pub name: String,
    pub version: String,
    /// Its `*.dist-info` folder.
    pub dist_info: PathBuf,
    pub files: Vec<PathBuf>,
}

/// The distributions of `site`, by their `*.dist-info` folders' names.
pub fn dist_files(site: &Path) -> Result<Vec<DistFiles>> {
    read_dists(site)?
        .into_iter()
        .map(|dist| {
            Ok(DistFiles {
                dist_info: dist.dist_info.strip_prefix(site)?.to_path_buf(),
                name: dist.name,
                version: dist.version,
                files: dist.files,
            })
        })
        .collect()
}

/// Removes a distribution of `site` (its files, its `*.dist-info` and the
/// folders that leaves empty).
pub fn remove_distribution(site: &Path, dist: &DistFiles) -> Result<()> {
    let dist = Dist {
        name: dist.name.clone(),
        version: dist.version.clone(),
        requires: Vec::new(),
        license: None,
        dist_info: site.join(&dist.dist_info),
        files: dist.files.clone(),
    };
    remove_dist(site, &dist)
}

fn remove_dist(site: &Path, dist: &Dist) -> Result<()> {
    let mut parents = BTreeSet::new();
    for file in &dist.files {
        let path = site.join(file);
        remove_any(&path)?;
        let mut parent = path.parent();
        while let Some(dir) = parent.filter(|dir| *dir != site) {
            parents.insert(dir.to_path_buf());
            parent = dir.parent();
        }
    }
    remove_any(&dist.dist_info)?;
    // Deepest first, so that emptied packages disappear entirely.
    for dir in parents.iter().rev() {
        let empty = fs::read_dir(dir)
            .map(|mut items| items.next().is_none())
            .unwrap_or(false);
        if empty {
            fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))?;
        } else if fs::read_dir(dir)
            .is_ok_and(|items| items.flatten().all(|item| item.file_name() == "__pycache__"))
        {
            remove_any(dir)?;
        }
    }
    Ok(())
}

/// Removes `__pycache__`, stray bytecode and install records below `dir`.
fn strip_tree(dir: &Path) -> Result<()> {
    for item in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let item = item?;
        let path = item.path();
        let name = item.file_name();
        let name = name.to_string_lossy();
        let file_type = item.file_type()?;
        if file_type.is_dir() {
            if name == "__pycache__" {
                remove_any(&path)?;
            } else {
                strip_tree(&path)?;
            }
        } else if name.ends_with(".pyc") || name.ends_with(".pyo") || is_install_record(&path) {
            remove_any(&path)?;
        }
    }
    Ok(())
}

fn is_install_record(path: &Path) -> bool {
    let in_dist_info = path
        .parent()
        .and_then(Path::extension)
        .is_some_and(|ext| ext == "dist-info");
    in_dist_info
        && path
            .file_name()
            .is_some_and(|name| INSTALL_RECORDS.iter().any(|record| name == *record))
}

pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let Ok(metadata) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if metadata.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .with_context(|| format!("removing {}", path.display()))
}

/// `jwt/api.py` → `jwt`; `six.py` → `six`; `_cffi_backend.cpython-311-x86_64-linux-gnu.so`
/// → `_cffi_backend`; metadata and data directories → nothing.
fn importable_top_level(file: &Path) -> Option<String> {
    let mut components = file.components();
    let first = components.next()?.as_os_str().to_str()?;
    let is_file = components.next().is_none();
    let name = if is_file {
        let (stem, ext) = first.split_once('.')?;
        if !matches!(first.rsplit('.').next()?, "py" | "pyc" | "so" | "pyd") || ext.is_empty() {
            return None;
        }
        stem
    } else {
        first
    };
    (is_identifier(name) && name != "__pycache__").then(|| name.to_string())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|ch| ch == '_' || ch.is_ascii_alphabetic())
        && chars.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(site: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
        let dist_info = site.join(format!("{name}-{version}.dist-info"));
        fs::create_dir_all(&dist_info).unwrap();
        fs::write(
            dist_info.join("METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody"),
        )
        .unwrap();
        let mut record = String::new();
        for (path, content) in files {
            let full = site.join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, content).unwrap();
            record.push_str(&format!("{path},sha256=x,{}\n", content.len()));
        }
        record.push_str(&format!(
            "{name}-{version}.dist-info/METADATA,,\n{name}-{version}.dist-info/RECORD,,\n"
        ));
        fs::write(dist_info.join("RECORD"), record).unwrap();
    }

    #[test]
    fn removes_excluded_dists_and_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path();
        install(
            site,
            "requests",
            "2.0",
            &[("requests/__init__.py", "import urllib3\n")],
        );
        install(
            site,
            "botocore",
            "1.0",
            &[("botocore/__init__.py", "x"), ("botocore/data/big.json", "{}")],
        );
        install(site, "s3transfer", "0.1", &[("s3transfer/__init__.py", "")]);
        fs::create_dir_all(site.join("bin")).unwrap();
        fs::write(site.join("bin/normalizer"), "#!").unwrap();
        fs::write(site.join(".lock"), "").unwrap();
        fs::create_dir_all(site.join("requests/__pycache__")).unwrap();
        fs::write(site.join("requests/__pycache__/x.cpython-311.pyc"), "").unwrap();
        fs::write(
            site.join("requests-2.0.dist-info/direct_url.json"),
            "{\"url\": \"file:///home/me\"}",
        )
        .unwrap();

        let inventory = prepare(site, &["botocore".into(), "s3transfer".into(), "boto3".into()]).unwrap();
        assert_eq!(inventory.excluded, vec!["botocore==1.0", "s3transfer==0.1"]);
        assert!(!site.join("botocore").exists());
        assert!(!site.join("s3transfer").exists());
        assert!(!site.join("bin").exists());
        assert!(!site.join(".lock").exists());
        assert!(!site.join("requests/__pycache__").exists());
        assert!(!site.join("requests-2.0.dist-info/direct_url.json").exists());
        let record = fs::read_to_string(site.join("requests-2.0.dist-info/RECORD")).unwrap();
        assert!(record.contains("requests/__init__.py,"), "{record}");
        assert!(!record.contains("direct_url.json"), "{record}");
        assert_eq!(inventory.packages.len(), 1);
        assert_eq!(inventory.packages[0].name, "requests");
        assert_eq!(inventory.packages[0].top_level, vec!["requests"]);
    }

    #[test]
    fn top_level_names() {
        assert_eq!(
            importable_top_level(Path::new("jwt/api.py")).as_deref(),
            Some("jwt")
        );
        assert_eq!(importable_top_level(Path::new("six.py")).as_deref(), Some("six"));
        assert_eq!(
            importable_top_level(Path::new("_cffi_backend.cpython-311-x86_64-linux-gnu.so")).as_deref(),
            Some("_cffi_backend")
        );
        assert_eq!(
            importable_top_level(Path::new("pyjwt-2.0.dist-info/METADATA")),
            None
        );
        assert_eq!(
            importable_top_level(Path::new("cryptography.libs/libssl.so")),
            None
        );
        assert_eq!(importable_top_level(Path::new("README.txt")), None);
    }

    #[test]
    fn record_paths_may_be_quoted() {
        assert_eq!(record_path("a/b.py,sha256=x,10"), Some(PathBuf::from("a/b.py")));
        assert_eq!(
            record_path("\"a,b.py\",sha256=x,10"),
            Some(PathBuf::from("a,b.py"))
        );
        assert_eq!(record_path(""), None);
    }
}
