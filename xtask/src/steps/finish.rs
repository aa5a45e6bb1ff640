//! What is done to a dependency layer after its install, and the proof that
//! it still works: slimming (named rules, each safe on its own), bytecode,
//! and an import of the layer's modules with the runtime's own Python. A
//! module that the installed layer imported and the finished one does not is
//! a failed build that names the module and the rule that broke it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::builder::{compile_bytecode, run_python, BuildContext, Finish, LayerJob, PythonRun, WORK};
use super::finished::{Finishing, Reuse};
use crate::config::{Bytecode, TABLE};
use crate::ground::atomic::link_tree;
use crate::ground::progress::Progress;
use crate::python::elf;
use crate::python::layer_content::remove_any;

/// The proof's script, run by the runtime's Python.
pub const PROVE_SCRIPT: &str = include_str!("../../py/prove.py");

/// Folders inside the install folder (mounted whole into a build container).
const SITE: &str = "python";
const PRISTINE: &str = "pristine/python";
const TRIAL: &str = "trial/python";
const BASES: &str = "bases";
/// Finished distributions copied out of the cache until the others are finished.
const REUSED: &str = "reused";

/// One thing finishing does to a layer, by the name errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Debug sections and the static symbol table of shared objects, which
    /// no import reads; what the loader maps is left byte for byte.
    StripSymbols,
    /// `tests`/`test` folders inside a package.
    TestSuites,
    /// `.pyi` type stubs, read by type checkers only.
    TypeStubs,
    /// C, C++ and Cython sources and headers shipped beside compiled modules.
    BuildSources,
    Bytecode(Bytecode),
}

pub const SLIM_RULES: [Rule; 4] = [
    Rule::StripSymbols,
    Rule::TestSuites,
    Rule::TypeStubs,
    Rule::BuildSources,
];

const BUILD_SOURCE_EXTENSIONS: &[&str] = &["c", "cc", "cpp", "h", "hpp", "pyx", "pxd", "pxi"];

impl Rule {
    pub fn name(self) -> String {
        match self {
            Rule::StripSymbols => "slim: strip-symbols".to_string(),
            Rule::TestSuites => "slim: test-suites".to_string(),
            Rule::TypeStubs => "slim: type-stubs".to_string(),
            Rule::BuildSources => "slim: build-sources".to_string(),
            Rule::Bytecode(mode) => format!("bytecode: {}", mode.name()),
        }
    }

    fn about(self) -> &'static str {
        match self {
            Rule::StripSymbols => "debug symbols stripped from shared objects",
            Rule::TestSuites => "test folders inside packages removed",
            Rule::TypeStubs => ".pyi stubs removed",
            Rule::BuildSources => "C/Cython sources and headers removed",
            Rule::Bytecode(Bytecode::Sourceless) => "sources replaced by their bytecode",
            Rule::Bytecode(_) => "bytecode compiled beside the sources",
        }
    }

    fn fix(self, layer: &str) -> String {
        match self {
            Rule::Bytecode(_) => "set `bytecode = \"checked-hash\"` (sources kept) or \"none\"".to_string(),
            _ => format!("set `slim = false` under [{TABLE}.layers.{layer}]"),
        }
    }
}

/// What finishing a layer changed.
#[derive(Debug, Default)]
pub struct Finished {
    /// Bytes each slimming rule removed.
    pub saved: BTreeMap<String, u64>,
    /// Modules imported by the proof.
    pub proven: usize,
    /// What containing the proof could not do on this machine, said once.
    pub notes: Vec<String>,
    /// Modules of the finished layer that do not import, as installed
    /// either: a fetched copy's proof tolerates these and no others.
    pub unimportable: Vec<String>,
    /// Distributions taken finished from the cache, of how many.
    pub reused: (usize, usize),
}

/// Finishes the layer of `job` installed in `install/python` (`install`
/// is the folder mounted into a build container): each distribution the
/// cache holds finished is taken from it, the others are finished here and
/// stored. [`prove_layer`] proves it once it is zipped.
pub fn finish_layer(job: &LayerJob, install: &Path, progress: &dyn Progress) -> Result<Finished> {
    let mut finished = Finished::default();
    if !job.finish.transforms() {
        return Ok(finished);
    }
    let site = install.join(SITE);
    link_tree(&site, &install.join(PRISTINE))?;
    let rules = rules_of(job.finish);
    let names: Vec<String> = rules.iter().map(|rule| rule.name()).collect();
    let compiler = job.build.builder.compiler_identity();
    let finishing = Finishing {
        compiler: &compiler,
        bytecode: job.finish.bytecode,
        rules: &names,
    };
    let mut reuse = Reuse::plan(job.cache, &finishing, &site, &install.join(REUSED), progress)?;
    finished.reused = reuse.counts();
    finished.saved = apply_rules(&job.build, &rules, install, &mut reuse)?;
    crate::python::layer_content::refresh_records(&site)?;
    reuse.finish(&site, progress)?;
    Ok(finished)
}

/// Proves the finished layer of `job` in `install/python`: every module
/// imported on top of the layers it is stacked on, unless the cache knows
/// the outcome for the same bytes (the same files, the same bases) proven
/// by the same Python with the same script. A module that imported as
/// installed and does not now fails the build. Reads the layer only.
pub fn prove_layer(job: &LayerJob, install: &Path, finished: &mut Finished) -> Result<()> {
    let site = install.join(SITE);
    let rules = rules_of(job.finish);
    let modules = modules_of(&site)?;
    finished.proven = modules.len();
    let key = match job.cache {
        Some(_) => Some(proof_key(job, &site)?),
        None => None,
    };
    if let (Some(cache), Some(key)) = (job.cache, &key) {
        if let Some(unimportable) = cache.proven(key) {
            finished.unimportable = unimportable;
            finished.notes.push(format!(
                "layer `{}`: proven before (the same files on the same bases, the same Python): not imported again",
                job.name
            ));
            return clean_up(install);
        }
    }

    let proof = Proof::stage(&job.build, install, &job.bases)?;
    let failed = proof.imports(SITE, &modules, &mut finished.notes)?;
    finished.unimportable = failed.keys().cloned().collect();
    if !failed.is_empty() {
        blame(job.name, &proof, &rules, failed, &mut finished.notes)?;
    }
    if let (Some(cache), Some(key)) = (job.cache, &key) {
        cache.remember_proof(key, &finished.unimportable);
    }
    clean_up(install)
}

/// What the proof's outcome depends on: the layer's files (path, bytes,
/// executable bit), its bases' ZIPs in order, the Python that imports them
/// and the script that does.
fn proof_key(job: &LayerJob, site: &Path) -> Result<String> {
    use crate::ground::digest::{bytes_sha256, file_sha256, KeyHasher};
    let mut key = KeyHasher::default();
    key.part("format", "proof-2")
        .part("script", bytes_sha256(PROVE_SCRIPT.as_bytes()))
        .part("python", job.build.builder.compiler_identity());
    for file in files_under(site)? {
        let executable = crate::store::archive::is_executable(&fs::metadata(&file)?);
        key.part("file", file.strip_prefix(site)?.to_string_lossy().as_bytes())
            .part(if executable { "x" } else { "-" }, file_sha256(&file)?.hex);
    }
    for base in &job.bases {
        key.part("base", file_sha256(base)?.hex);
    }
    Ok(key.hex())
}

/// Removes what finishing and proving kept beside the layer.
fn clean_up(install: &Path) -> Result<()> {
    for dir in ["pristine", "trial", BASES, REUSED] {
        remove_any(&install.join(dir))?;
    }
    Ok(())
}

/// Applies `rules` to `install/python` in order: the bytes each saved,
/// with what each saved of the distributions `reuse` took finished.
fn apply_rules(
    build: &BuildContext,
    rules: &[Rule],
    install: &Path,
    reuse: &mut Reuse,
) -> Result<BTreeMap<String, u64>> {
    let site = install.join(SITE);
    let mut saved = BTreeMap::new();
    let mut size = tree_size(&site)?;
    reuse.measure(&site)?;
    for &rule in rules {
        apply(build, rule, install, SITE)?;
        let now = tree_size(&site)?;
        reuse.after_rule(&site, &rule.name())?;
        let delta = size as i64 - now as i64 + reuse.reused_delta(&rule.name());
        if delta > 0 {
            saved.insert(rule.name(), delta as u64);
        }
        size = now;
    }
    Ok(saved)
}

/// Fails the build when a module that does not import now did as
/// installed (`pristine`), naming the rules that break it alone.
fn blame(
    layer: &str,
    proof: &Proof,
    rules: &[Rule],
    failed: BTreeMap<String, String>,
    notes: &mut Vec<String>,
) -> Result<()> {
    // Only what the installed layer imported counts against a rule.
    let names: Vec<String> = failed.keys().cloned().collect();
    let before = proof.imports(PRISTINE, &names, notes)?;
    let broken: BTreeMap<String, String> = failed
        .into_iter()
        .filter(|(module, _)| !before.contains_key(module))
        .collect();
    if broken.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = broken.keys().cloned().collect();
    let mut culprits: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    for &rule in rules {
        let trial = proof.install.join(TRIAL);
        remove_any(&trial)?;
        link_tree(&proof.install.join(PRISTINE), &trial)?;
        apply(proof.build, rule, proof.install, TRIAL)?;
        for module in proof.imports(TRIAL, &names, notes)?.into_keys() {
            culprits.entry(module).or_default().push(rule);
        }
    }
    bail!(broken_message(layer, &broken, &culprits))
}

/// The rules `finish` applies, in the order they run.
fn rules_of(finish: Finish) -> Vec<Rule> {
    let mut rules = Vec::new();
    if finish.slim {
        rules.extend(SLIM_RULES);
    }
    if finish.bytecode != Bytecode::None {
        rules.push(Rule::Bytecode(finish.bytecode));
    }
    rules
}

fn broken_message(
    layer: &str,
    broken: &BTreeMap<String, String>,
    culprits: &BTreeMap<String, Vec<Rule>>,
) -> String {
    let mut message = format!("layer `{layer}` no longer imports what it did as installed; nothing ships:");
    let mut fixes = BTreeSet::new();
    for (module, error) in broken {
        let rules = culprits.get(module).map(Vec::as_slice).unwrap_or_default();
        let by = if rules.is_empty() {
            "broken by the rules together, by none alone".to_string()
        } else {
            rules
                .iter()
                .map(|rule| {
                    fixes.insert(rule.fix(layer));
                    format!("broken by `{}` ({})", rule.name(), rule.about())
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        message.push_str(&format!("\n  {module}: {error}\n    {by}"));
    }
    if fixes.is_empty() {
        fixes.insert(Rule::StripSymbols.fix(layer));
    }
    let fixes: Vec<String> = fixes.into_iter().collect();
    message.push_str(&format!("\n({})", fixes.join("; or ")));
    message
}

/// Applies `rule` to `install/<site>`.
fn apply(build: &BuildContext, rule: Rule, install: &Path, site: &str) -> Result<()> {
    let root = install.join(site);
    match rule {
        Rule::Bytecode(mode) => {
            compile_bytecode(build, mode, &format!("{WORK}/{site}"), install)?;
            if mode == Bytecode::Sourceless {
                drop_compiled_sources(&root)?;
            }
        }
        Rule::StripSymbols => {
            for file in files_under(&root)? {
                let name = file.file_name().map(|name| name.to_string_lossy().into_owned());
                if !name.is_some_and(|name| name.ends_with(".so") || name.contains(".so.")) {
                    continue;
                }
                let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                if let Some(stripped) = elf::strip_symbols(&bytes) {
                    replace(&file, &stripped.bytes)?;
                }
            }
        }
        Rule::TestSuites => {
            // Inside a package only: a top-level `tests` is somebody's module.
            for package in fs::read_dir(&root)?.flatten() {
                let name = package.file_name().to_string_lossy().into_owned();
                if package.file_type()?.is_dir() && !name.ends_with(".dist-info") {
                    remove_named_dirs(&package.path(), &["tests", "test"])?;
                }
            }
        }
        Rule::TypeStubs | Rule::BuildSources => {
            let extensions: &[&str] = if rule == Rule::TypeStubs {
                &["pyi"]
            } else {
                BUILD_SOURCE_EXTENSIONS
            };
            for file in files_under(&root)? {
                let in_metadata = file
                    .strip_prefix(&root)
                    .ok()
                    .and_then(|relative| relative.components().next())
                    .is_some_and(|first| first.as_os_str().to_string_lossy().ends_with(".dist-info"));
                let matches = file
                    .extension()
                    .is_some_and(|ext| extensions.iter().any(|wanted| ext == *wanted));
                if matches && !in_metadata {
                    fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// Removes each `x.py` whose `x.pyc` was compiled beside it.
fn drop_compiled_sources(root: &Path) -> Result<()> {
    for file in files_under(root)? {
        if file.extension().is_some_and(|ext| ext == "py") && file.with_extension("pyc").is_file() {
            fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    Ok(())
}

/// The modules the proof imports: every module of the finished layer
/// (packages, submodules, extension modules) by its dotted name, but
/// `__main__` modules, which run programs.
pub(crate) fn modules_of(site: &Path) -> Result<Vec<String>> {
    let mut modules = BTreeSet::new();
    for file in files_under(site)? {
        let relative = file.strip_prefix(site)?;
        if let Some(module) = module_name(relative) {
            let module = module.strip_suffix(".__init__").unwrap_or(&module).to_string();
            if module != "__init__" && !module.split('.').any(|part| part == "__main__") {
                modules.insert(module);
            }
        }
    }
    Ok(modules.into_iter().collect())
}

/// `a/b/_c.cpython-311-x86_64-linux-gnu.so` → `a.b._c`; `six.py` → `six`.
fn module_name(relative: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let components: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let (file, dirs) = components.split_last()?;
    let (stem, extension) = file.split_once('.')?;
    let extension = extension.rsplit('.').next()?;
    if !matches!(extension, "py" | "pyc" | "so") {
        return None;
    }
    if dirs.iter().any(|dir| dir == "__pycache__") {
        return None;
    }
    for dir in dirs {
        parts.push(dir.clone());
    }
    parts.push(stem.to_string());
    parts
        .iter()
        .all(|part| is_identifier(part))
        .then(|| parts.join("."))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
        && chars.all(|ch| ch.is_alphanumeric() || ch == '_')
}

/// The import proof of a layer unpacked in a folder `install` (mounted
/// whole into a build container), on top of the layers it is stacked on.
pub(crate) struct Proof<'a> {
    build: &'a BuildContext<'a>,
    install: &'a Path,
    /// The bases' folders, relative to `install`: on the path after the
    /// layer's own.
    path: Vec<String>,
}

impl<'a> Proof<'a> {
    /// Unpacks `bases` (the ZIPs of the layers it is stacked on, in order)
    /// into `install/bases`.
    pub(crate) fn stage(
        build: &'a BuildContext<'a>,
        install: &'a Path,
        bases: &[PathBuf],
    ) -> Result<Proof<'a>> {
        let mut path = Vec::new();
        for (index, zip) in bases.iter().enumerate() {
            let dir = install.join(BASES).join(index.to_string());
            crate::store::archive::extract_zip(zip, &dir)?;
            path.push(format!("{BASES}/{index}/python"));
        }
        Ok(Proof { build, install, path })
    }

    /// Imports `modules` from `install/<site>` (then the bases) with the
    /// runtime's Python: each failure, by module. The imports run the
    /// layer's code (third-party code), so they run contained (`contain`):
    /// no network, none of the caller's variables but the allow-list, and
    /// as the sandbox user when the tool runs as root, reading the layer and
    /// writing only the answer. `notes` receives what this machine did not
    /// allow.
    pub(crate) fn imports(
        &self,
        site: &str,
        modules: &[String],
        notes: &mut Vec<String>,
    ) -> Result<BTreeMap<String, String>> {
        let install = self.install;
        let mut folders = vec![site.to_string()];
        folders.extend(self.path.iter().cloned());
        let request = serde_json::json!({ "path": folders, "modules": modules });
        fs::write(install.join("prove.py"), PROVE_SCRIPT)?;
        fs::write(install.join("prove.json"), serde_json::to_vec(&request)?)?;
        let answer = install.join("proved.json");
        let _ = fs::remove_file(&answer);
        // -B: the proof writes no bytecode into the layer it proves.
        let args: Vec<String> = [
            "-I",
            "-S",
            "-B",
            &format!("{WORK}/prove.py"),
            &format!("{WORK}/prove.json"),
            &format!("{WORK}/proved.json"),
        ]
        .map(String::from)
        .to_vec();
        let ran = run_python(self.build, install, &args, PythonRun::Imports { answer: &answer })?;
        notes.extend(ran.notes);
        let result = fs::read(&answer)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<BTreeMap<String, String>>(&bytes).ok());
        for file in ["prove.py", "prove.json", "proved.json"] {
            let _ = fs::remove_file(install.join(file));
        }
        match result {
            Some(failed) if ran.output.status.success() => Ok(failed),
            _ => Ok(died_importing(&ran.output, modules)),
        }
    }
}

/// The interpreter died: the last module it named killed it; the others
/// were not reached.
fn died_importing(output: &std::process::Output, modules: &[String]) -> BTreeMap<String, String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("?").to_string();
    let mut failed = BTreeMap::new();
    for module in modules {
        let why = if *module == last {
            format!("the interpreter died importing it ({})", output.status)
        } else {
            "not reached: the interpreter died first".to_string()
        };
        failed.insert(module.clone(), why);
    }
    failed
}

fn replace(file: &Path, bytes: &[u8]) -> Result<()> {
    let mode = fs::metadata(file)?.permissions();
    fs::remove_file(file).with_context(|| format!("replacing {}", file.display()))?;
    fs::write(file, bytes).with_context(|| format!("writing {}", file.display()))?;
    fs::set_permissions(file, mode)?;
    Ok(())
}

fn remove_named_dirs(dir: &Path, names: &[&str]) -> Result<()> {
    for item in fs::read_dir(dir)?.flatten() {
        if !item.file_type()?.is_dir() {
            continue;
        }
        let name = item.file_name();
        if names.iter().any(|wanted| name == *wanted) {
            remove_any(&item.path())?;
        } else {
            remove_named_dirs(&item.path(), names)?;
        }
    }
    Ok(())
}

/// Every regular file below `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for item in fs::read_dir(&next).with_context(|| format!("listing {}", next.display()))? {
            let item = item?;
            let file_type = item.file_type()?;
            if file_type.is_dir() {
                pending.push(item.path());
            } else if file_type.is_file() {
                files.push(item.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for file in files_under(dir)? {
        total += fs::metadata(&file)?.len();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        let name = |path: &str| module_name(Path::new(path));
        assert_eq!(
            name("a/b/_c.cpython-311-x86_64-linux-gnu.so").as_deref(),
            Some("a.b._c")
        );
        assert_eq!(
            name("cryptography/hazmat/bindings/_rust.abi3.so").as_deref(),
            Some("cryptography.hazmat.bindings._rust")
        );
        assert_eq!(name("six.py").as_deref(), Some("six"));
        assert_eq!(
            name("typing_extensions.pyc").as_deref(),
            Some("typing_extensions")
        );
        assert_eq!(name("pkg-1.0.dist-info/x.so"), None);
        assert_eq!(name("README.md"), None);
        assert_eq!(name("pkg/__pycache__/x.cpython-311.pyc"), None);
    }

    #[test]
    fn a_broken_module_names_its_rules_and_fixes() {
        let broken = BTreeMap::from([(
            "pkg".to_string(),
            "ModuleNotFoundError: No module named 'pkg.tests'".to_string(),
        )]);
        let culprits = BTreeMap::from([("pkg".to_string(), vec![Rule::TestSuites])]);
        let message = broken_message("core", &broken, &culprits);
        assert!(message.contains("pkg: ModuleNotFoundError"), "{message}");
        assert!(message.contains("broken by `slim: test-suites`"), "{message}");
        assert!(
            message.contains("slim = false` under [workspace.metadata.lambda.layers.core]"),
            "{message}"
        );
    }
}
