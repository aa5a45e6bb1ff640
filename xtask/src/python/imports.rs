//! Which imports a function's code reaches, and who provides each: an
//! attached layer, the runtime, the standard library, or nobody (an
//! ImportError waiting to happen). Also the distributions an attached layer
//! ships that nothing reaches.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::manifest::Package;
use crate::config::{Config, LayerSource};
use crate::facts::{self, normalize_dist_name};
use crate::ground::atomic;
use crate::ground::digest::{file_sha256, KeyHasher};
use crate::python::analyze::{self, ModuleAnswer};

/// The Python code of one function: its own modules and those of the
/// attached source layers, by dotted name.
pub struct Code<'a> {
    pub modules: BTreeMap<String, &'a ModuleAnswer>,
    pub entry: String,
}

/// A requirements layer the function can import from.
pub struct Provider<'a> {
    pub layer: &'a str,
    pub packages: &'a [Package],
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Import name → the layer that provides it.
    pub provided: BTreeMap<String, String>,
    pub runtime: BTreeSet<String>,
    pub missing: Vec<Missing>,
    pub unused: Vec<Unused>,
    /// Runtime-provided distributions a layer ships anyway.
    pub shadowing: Vec<String>,
    pub unparsable: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Missing {
    pub name: String,
    pub module: String,
    pub line: u32,
    /// Inside `try: … except ImportError`: the code copes without it.
    pub guarded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unused {
    pub distribution: String,
    pub version: String,
    pub layer: String,
    pub unzipped_bytes: u64,
}

/// Dotted module names of files relative to a sys.path entry:
/// `a.py` → `a`, `pkg/__init__.py` → `pkg`, `pkg/m.py` → `pkg.m`.
pub fn module_name(relative: &str) -> Option<String> {
    let stem = relative.strip_suffix(".py")?;
    let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
    Some(stem.replace('/', "."))
}

pub fn check(code: &Code, providers: &[Provider], stdlib: &BTreeSet<String>) -> Report {
    let mut reach = Reach::new(code, providers, stdlib);
    reach.walk();
    let Reach {
        mut report,
        used_dists,
        ..
    } = reach;
    judge_distributions(providers, used_dists, &mut report);
    report
}

/// A walk through a function's code from its entry module, and what it found.
struct Reach<'a, 'c> {
    code: &'a Code<'c>,
    stdlib: &'a BTreeSet<String>,
    /// The top-level names of the code's own modules.
    internal_tops: BTreeSet<&'a str>,
    /// Import name → the layer and distribution that provide it (the first to list it).
    by_import: BTreeMap<&'a str, (&'a str, &'a Package)>,
    report: Report,
    /// Normalised names of the distributions something reached imports.
    used_dists: BTreeSet<String>,
}

impl<'a, 'c> Reach<'a, 'c> {
    fn new(code: &'a Code<'c>, providers: &'a [Provider], stdlib: &'a BTreeSet<String>) -> Reach<'a, 'c> {
        let internal_tops: BTreeSet<&str> = code
            .modules
            .keys()
            .map(|name| name.split('.').next().unwrap_or(name))
            .collect();
        let mut by_import: BTreeMap<&str, (&str, &Package)> = BTreeMap::new();
        for provider in providers {
            for package in provider.packages {
                for name in &package.top_level {
                    by_import
                        .entry(name.as_str())
                        .or_insert((provider.layer, package));
                }
            }
        }
        Reach {
            code,
            stdlib,
            internal_tops,
            by_import,
            report: Report::default(),
            used_dists: BTreeSet::new(),
        }
    }

    /// Every module the entry reaches, breadth first, each once.
    fn walk(&mut self) {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([self.code.entry.clone()]);
        while let Some(module) = queue.pop_front() {
            if !seen.insert(module.clone()) {
                continue;
            }
            let Some(answer) = self.code.modules.get(&module) else {
                continue;
            };
            if let Some(error) = &answer.error {
                self.report.unparsable.push(format!("{module}: {error}"));
                continue;
            }
            let is_package = self
                .code
                .modules
                .keys()
                .any(|other| other.starts_with(&format!("{module}.")));
            for import in &answer.imports {
                self.import(&module, is_package, import, &mut queue);
            }
        }
    }

    /// One import of `module`: the code's own modules it runs join the
    /// queue; a name from outside the code and the standard library is
    /// provided by a layer, by the runtime, or missing.
    fn import(
        &mut self,
        module: &str,
        is_package: bool,
        import: &analyze::Import,
        queue: &mut VecDeque<String>,
    ) {
        let Some(absolute) = resolve(module, is_package, import.level, &import.module) else {
            return;
        };
        let mut candidates = vec![absolute.clone()];
        candidates.extend(import.names.iter().map(|name| format!("{absolute}.{name}")));
        let mut reached_internal = false;
        for candidate in &candidates {
            // Importing a.b.c runs a, a.b and a.b.c.
            let mut prefix = String::new();
            for part in candidate.split('.') {
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(part);
                if self.code.modules.contains_key(&prefix) {
                    queue.push_back(prefix.clone());
                    reached_internal = true;
                }
            }
        }
        let top = absolute.split('.').next().unwrap_or_default();
        if reached_internal || import.level > 0 || top.is_empty() || self.internal_tops.contains(top) {
            return;
        }
        if top == "__future__" || self.stdlib.contains(top) {
            return;
        }
        if let Some((layer, package)) = self.by_import.get(top) {
            self.report.provided.insert(top.to_string(), layer.to_string());
            self.used_dists.insert(normalize_dist_name(&package.name));
        } else if facts::RUNTIME_IMPORTABLE.contains(&top) {
            self.report.runtime.insert(top.to_string());
        } else if !self.report.missing.iter().any(|missing| missing.name == top) {
            self.report.missing.push(Missing {
                name: top.to_string(),
                module: module.to_string(),
                line: import.line,
                guarded: import.guarded,
            });
        }
    }
}

/// A distribution is used when something reached imports it, or a used
/// distribution depends on it; the others are unused. Those the runtime
/// provides shadow its own.
fn judge_distributions(providers: &[Provider], mut used_dists: BTreeSet<String>, report: &mut Report) {
    let all: BTreeMap<String, (&str, &Package)> = providers
        .iter()
        .flat_map(|provider| {
            provider
                .packages
                .iter()
                .map(move |package| (normalize_dist_name(&package.name), (provider.layer, package)))
        })
        .collect();
    let mut stack: Vec<String> = used_dists.iter().cloned().collect();
    while let Some(name) = stack.pop() {
        if let Some((_, package)) = all.get(&name) {
            for dependency in &package.requires {
                if used_dists.insert(dependency.clone()) {
                    stack.push(dependency.clone());
                }
            }
        }
    }
    for (name, (layer, package)) in &all {
        if facts::RUNTIME_PROVIDED.contains(&name.as_str()) {
            report.shadowing.push(format!(
                "layer `{layer}` ships {} {}, which the runtime already provides",
                package.name, package.version
            ));
        }
        if !used_dists.contains(name) {
            report.unused.push(Unused {
                distribution: package.name.clone(),
                version: package.version.clone(),
                layer: layer.to_string(),
                unzipped_bytes: package.unzipped_bytes,
            });
        }
    }
    report
        .unused
        .sort_by_key(|unused| std::cmp::Reverse(unused.unzipped_bytes));
}

/// The absolute module an import names, resolving `from . import x`.
fn resolve(module: &str, is_package: bool, level: u32, name: &str) -> Option<String> {
    if level == 0 {
        return Some(name.to_string());
    }
    let mut parts: Vec<&str> = module.split('.').collect();
    if !is_package {
        parts.pop();
    }
    for _ in 1..level {
        parts.pop()?;
    }
    if !name.is_empty() {
        parts.push(name);
    }
    (!parts.is_empty()).then(|| parts.join("."))
}

/// Import facts of every Python file of the functions and source layers,
/// cached by their content so that a no-op run does not start Python.
pub struct Analysis {
    /// Path relative to the repository root → its imports.
    pub modules: BTreeMap<String, ModuleAnswer>,
    pub stdlib: BTreeSet<String>,
}

pub fn analyse_sources(config: &Config, python: &Path) -> Result<Analysis> {
    let mut paths = BTreeSet::new();
    let mut dirs: Vec<PathBuf> = config
        .functions
        .values()
        .map(|function| function.source.clone())
        .collect();
    dirs.extend(config.layers.values().filter_map(|layer| match &layer.source {
        LayerSource::Source(dir) => Some(dir.clone()),
        _ => None,
    }));
    let mut key = KeyHasher::default();
    key.part("script", include_str!("../../py/analyze.py"))
        .part("runtime", config.runtime.name);
    for dir in &dirs {
        for file in crate::python::sources::collect(&config.root, dir, "source", &allow_all(config))? {
            if file.relative.ends_with(".py") {
                let relative = dir.join(&file.relative).display().to_string();
                key.part(&relative, file_sha256(&file.path)?.hex);
                paths.insert(relative);
            }
        }
    }
    let cache_file = config
        .cache_dir()
        .join("imports")
        .join(format!("{}.json", key.hex()));
    if let Ok(bytes) = std::fs::read(&cache_file) {
        if let Ok((modules, stdlib)) = serde_json::from_slice(&bytes) {
            return Ok(Analysis { modules, stdlib });
        }
    }
    let request = analyze::Request {
        handlers: Vec::new(),
        compile: Vec::new(),
        modules: paths
            .iter()
            .map(|path| config.root.join(path).display().to_string())
            .collect(),
    };
    let answer = analyze::run(python, &request)?;
    let modules: BTreeMap<String, ModuleAnswer> = paths
        .iter()
        .filter_map(|path| {
            let absolute = config.root.join(path).display().to_string();
            answer
                .modules
                .get(&absolute)
                .map(|module| (path.clone(), module.clone()))
        })
        .collect();
    let stdlib: BTreeSet<String> = answer.stdlib.into_iter().collect();
    atomic::write_atomic(&cache_file, &serde_json::to_vec(&(&modules, &stdlib))?)?;
    Ok(Analysis { modules, stdlib })
}

/// Every secret-looking file was already accepted or refused by `package`;
/// here only `.py` files matter.
fn allow_all(config: &Config) -> Vec<String> {
    let mut allow: Vec<String> = config
        .functions
        .values()
        .flat_map(|function| function.allow.clone())
        .collect();
    allow.extend(config.layers.values().flat_map(|layer| layer.allow.clone()));
    allow
}

/// The modules a function can import from its own folder and from the
/// source layers it reaches, by dotted name.
pub fn function_code<'a>(
    config: &Config,
    name: &str,
    layers: &[String],
    analysis: &'a Analysis,
) -> Result<Code<'a>> {
    let function = &config.functions[name];
    let mut modules = BTreeMap::new();
    let mut add = |dir: &std::path::Path, prefix: &str| {
        let dir = dir.display().to_string();
        for (path, answer) in &analysis.modules {
            if let Some(relative) = path.strip_prefix(&format!("{dir}/")) {
                if let Some(module) = module_name(&format!("{prefix}{relative}")) {
                    modules.insert(module, answer);
                }
            }
        }
    };
    for layer in layers {
        // By the manifest's names: a profile's build for another platform is
        // not a configured name, and never a source layer.
        if let Some(LayerSource::Source(dir)) = config.layers.get(layer).map(|layer| &layer.source) {
            let package = dir.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            add(dir, &format!("{package}/"));
        }
    }
    add(&function.source, "");
    let (entry, _) = function.handler_parts();
    Ok(Code {
        modules,
        entry: entry.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::analyze::Import;

    fn module(imports: &[(&str, u32, &[&str])]) -> ModuleAnswer {
        ModuleAnswer {
            imports: imports
                .iter()
                .map(|(module, level, names)| Import {
                    module: module.to_string(),
                    level: *level,
                    line: 1,
                    guarded: false,
                    names: names.iter().map(|name| name.to_string()).collect(),
                })
                .collect(),
            error: None,
        }
    }

    fn package(name: &str, top: &str, requires: &[&str], size: u64) -> Package {
        Package {
            name: name.into(),
            version: "1".into(),
            unzipped_bytes: size,
            top_level: vec![top.into()],
            requires: requires.iter().map(|name| name.to_string()).collect(),
            license: None,
        }
    }

    #[test]
    fn classifies_imports_and_finds_unused_distributions() {
        let handler = module(&[
            ("json", 0, &[]),
            ("requests", 0, &[]),
            ("shared", 0, &["util"]),
            ("boto3", 0, &[]),
            ("nowhere", 0, &[]),
        ]);
        let shared_init = module(&[]);
        let shared_util = module(&[("", 1, &["helpers"]), ("twilio.rest", 0, &["Client"])]);
        let helpers = module(&[("urllib.parse", 0, &[])]);
        let code = Code {
            modules: BTreeMap::from([
                ("handler".to_string(), &handler),
                ("shared".to_string(), &shared_init),
                ("shared.util".to_string(), &shared_util),
                ("shared.helpers".to_string(), &helpers),
            ]),
            entry: "handler".into(),
        };
        let core = [
            package("requests", "requests", &["urllib3"], 10),
            package("urllib3", "urllib3", &[], 5),
        ];
        let sms = [
            package("twilio", "twilio", &[], 100),
            package("openai", "openai", &["httpx"], 50),
            package("httpx", "httpx", &[], 20),
        ];
        let providers = [
            Provider {
                layer: "core",
                packages: &core,
            },
            Provider {
                layer: "sms",
                packages: &sms,
            },
        ];
        let stdlib: BTreeSet<String> = ["json", "urllib"].iter().map(|name| name.to_string()).collect();
        let report = check(&code, &providers, &stdlib);
        assert_eq!(
            report.provided,
            BTreeMap::from([
                ("requests".into(), "core".into()),
                ("twilio".into(), "sms".into())
            ])
        );
        assert_eq!(report.runtime, BTreeSet::from(["boto3".to_string()]));
        assert_eq!(report.missing.len(), 1);
        assert_eq!(report.missing[0].name, "nowhere");
        let unused: Vec<_> = report
            .unused
            .iter()
            .map(|unused| unused.distribution.as_str())
            .collect();
        assert_eq!(unused, ["openai", "httpx"], "urllib3 is used through requests");
    }

    #[test]
    fn module_names_and_relative_imports() {
        assert_eq!(module_name("a.py").as_deref(), Some("a"));
        assert_eq!(module_name("pkg/__init__.py").as_deref(), Some("pkg"));
        assert_eq!(module_name("pkg/sub/m.py").as_deref(), Some("pkg.sub.m"));
        assert_eq!(module_name("data.json"), None);
        assert_eq!(resolve("pkg.m", false, 1, "x").as_deref(), Some("pkg.x"));
        assert_eq!(resolve("pkg", true, 1, "").as_deref(), Some("pkg"));
        assert_eq!(resolve("pkg.sub.m", false, 2, "y").as_deref(), Some("pkg.y"));
        assert_eq!(resolve("m", false, 2, "y"), None);
    }
}
