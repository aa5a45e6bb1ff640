//! The steps of application code: a source layer (shared code, as
//! `python/<package>/…`) and a thin function ZIP holding only its own
//! folder, or with its layers merged in (`bundle = true`); and what they
//! need first: the files of a folder, and a handler module that defines its
//! handler (asked of Python's own parser).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::install::{ZipData, LAYER_ZIP};
use crate::config::{Config, Function, Layer, LayerSource};
use crate::facts;
use crate::ground::error::UsageError;
use crate::python::analyze::{self, HandlerRequest};
use crate::python::sources::{self, SourceFile};
use crate::store::archive::{self, Content, Entry};
use crate::store::inputs::Inputs;

/// The output file of a function entry.
pub const FUNCTION_ZIP: &str = "function.zip";

fn usage(err: anyhow::Error) -> anyhow::Error {
    UsageError::new(format!("{err:#}")).into()
}

/// A function's files; its handler module must be among them.
pub fn function_files(config: &Config, function: &Function) -> Result<Vec<SourceFile>> {
    let key = format!("functions.{}.source", function.name);
    let files = sources::collect(&config.root, &function.source, &key, &function.allow).map_err(usage)?;
    if handler_file(function, &files).is_none() {
        let (module, _) = function.handler_parts();
        return Err(UsageError::new(format!(
            "functions.{}.handler: `{}` needs {}.py in {}, which is not there",
            function.name,
            function.handler,
            module.replace('.', "/"),
            function.source.display()
        ))
        .into());
    }
    Ok(files)
}

/// A source layer's files and the prefix they get (`python/<package>/`).
pub fn source_layer_files(config: &Config, layer: &Layer) -> Result<(Vec<SourceFile>, String)> {
    let LayerSource::Source(dir) = &layer.source else {
        anyhow::bail!("layer `{}` is not a source layer", layer.name);
    };
    let key = format!("layers.{}.source", layer.name);
    let files = sources::collect(&config.root, dir, &key, &layer.allow).map_err(usage)?;
    if files.is_empty() {
        return Err(UsageError::new(format!("{key}: {} holds no files to package", dir.display())).into());
    }
    let package = dir.file_name().and_then(|name| name.to_str()).ok_or_else(|| {
        UsageError::new(format!(
            "{key}: `{}` has no folder name to ship as python/<name>/ (point it at the package folder, e.g. \"lambdas/shared\")",
            dir.display()
        ))
    })?;
    Ok((files, format!("python/{package}/")))
}

/// The entries of `files` (of the folder `dir`) under `prefix`, with the
/// bytes their key hashed (`keyed`): each file is read once, checked, and
/// zipped from memory, so a file edited during the build fails the step
/// instead of shipping new bytes under the old key.
fn verified_entries(files: &[SourceFile], prefix: &str, dir: &Path, keyed: &Inputs) -> Result<Vec<Entry>> {
    files
        .iter()
        .map(|file| {
            let label = dir.join(&file.relative).display().to_string();
            let bytes = std::fs::read(&file.path).with_context(|| format!("reading {label}"))?;
            let hashed = keyed
                .value(&format!("file {label}"))
                .and_then(|value| value.get(1..));
            if hashed != Some(crate::ground::digest::bytes_sha256(&bytes).as_str()) {
                anyhow::bail!("{label} changed during the build; run again");
            }
            Ok(Entry {
                path: format!("{prefix}{}", file.relative),
                content: Content::Bytes(bytes),
                executable: file.executable,
            })
        })
        .collect()
}

/// Application code to zip: its files as planned, the inputs its key
/// hashed (each file is zipped only if it still holds those bytes), and
/// its compiled bytecode.
pub struct Sources<'a> {
    pub files: &'a [SourceFile],
    pub keyed: &'a Inputs,
    pub compiled: &'a [(String, Vec<u8>)],
}

/// The ZIP of the source layer `layer`: its files under `prefix`, with
/// their compiled bytecode.
pub fn source_layer(layer: &Layer, prefix: &str, code: &Sources, work: &Path) -> Result<ZipData> {
    let LayerSource::Source(dir) = &layer.source else {
        anyhow::bail!("not a source layer");
    };
    let mut entries = verified_entries(code.files, prefix, dir, code.keyed)?;
    entries.extend(compiled_entries(code.compiled));
    let written = archive::write_zip(&work.join(LAYER_ZIP), entries)?;
    Ok(ZipData::of_app_code(written.into()))
}

/// The ZIP of `function`: its own files and their compiled bytecode, over
/// the content of the layers it bundles (`python/x` → `x`), `bundled` by
/// layer name with the ZIP of each.
pub fn function(
    config: &Config,
    function: &Function,
    code: &Sources,
    mut bundled: Vec<(String, PathBuf)>,
    work: &Path,
) -> Result<ZipData> {
    // In the configuration's order: a later layer's file wins.
    let order: Vec<String> = function
        .layers
        .iter()
        .map(|name| config.attached(function, name))
        .collect();
    bundled.sort_by_key(|(name, _)| order.iter().position(|layer| layer == name));
    let files = verified_entries(code.files, "", &function.source, code.keyed)?;
    let mut entries = Vec::new();
    for (name, zip) in &bundled {
        let content = archive::read_entries(zip).with_context(|| format!("reading layer `{name}`"))?;
        entries.extend(content.into_iter().filter_map(|(path, bytes, executable)| {
            path.strip_prefix("python/").map(|rest| Entry {
                path: rest.to_string(),
                content: Content::Bytes(bytes),
                executable,
            })
        }));
    }
    // A later layer's file wins, as it would when attached; the function's
    // own files win over all, as /var/task comes before /opt on sys.path.
    let mut by_path: BTreeMap<String, Entry> = BTreeMap::new();
    let own = files.into_iter().chain(compiled_entries(code.compiled));
    for entry in entries.into_iter().chain(own) {
        by_path.insert(entry.path.clone(), entry);
    }
    let written = archive::write_zip(&work.join(FUNCTION_ZIP), by_path.into_values().collect())?;
    Ok(ZipData::of_app_code(written.into()))
}

/// The file of the handler's module: `a.b.f` → `a/b.py` or `a/b/__init__.py`.
pub fn handler_file<'a>(function: &Function, files: &'a [SourceFile]) -> Option<&'a SourceFile> {
    let (module, _) = function.handler_parts();
    let module_path = module.replace('.', "/");
    files.iter().find(|file| {
        file.relative == format!("{module_path}.py") || file.relative == format!("{module_path}/__init__.py")
    })
}

/// Application code to compile: one function's or source layer's files,
/// the prefix they get in its ZIP and where that ZIP is at run time
/// (`/var/task` or `/opt`).
pub struct AppCode<'a> {
    pub owner: String,
    pub files: &'a [SourceFile],
    pub prefix: String,
    pub run_root: &'static str,
}

impl<'a> AppCode<'a> {
    /// A source layer's code: under its prefix, in `/opt` at run time.
    pub fn source_layer(name: &str, files: &'a [SourceFile], prefix: &str) -> AppCode<'a> {
        AppCode {
            owner: name.to_string(),
            files,
            prefix: prefix.to_string(),
            run_root: facts::LAYER_MOUNT,
        }
    }

    /// A function's own code: at the root of its ZIP, in `/var/task`.
    pub fn function(name: &str, files: &'a [SourceFile]) -> AppCode<'a> {
        AppCode {
            owner: name.to_string(),
            files,
            prefix: String::new(),
            run_root: facts::TASK_ROOT,
        }
    }
}

/// Each owner's compiled bytecode, as extra ZIP entries: `(path, bytes)`.
pub type Compiled = BTreeMap<String, Vec<(String, Vec<u8>)>>;

/// Parses each handler module with `python` and says, per function, what is
/// wrong with it (`None`: it defines its handler); in the same interpreter
/// start, compiles `code` to checked-hash bytecode beside its sources
/// (`__pycache__/<module>.<tag>.pyc`): the sources stay, so tracebacks of
/// application code keep their lines, and nothing is compiled at import.
pub fn check_handlers(
    python: &Path,
    handlers: &[(&Function, &[SourceFile])],
    code: &[AppCode],
) -> Result<(BTreeMap<String, Option<String>>, Compiled)> {
    let mut request = analyze::Request::default();
    let mut jobs: BTreeMap<String, (String, String)> = BTreeMap::new();
    for owner in code {
        for file in owner.files.iter().filter(|file| file.relative.ends_with(".py")) {
            let key = format!("{}\u{0}{}", owner.owner, file.relative);
            let (dir, name) = match file.relative.rsplit_once('/') {
                Some((dir, name)) => (format!("{dir}/"), name),
                None => (String::new(), file.relative.as_str()),
            };
            let stem = name.trim_end_matches(".py");
            jobs.insert(
                key.clone(),
                (
                    owner.owner.clone(),
                    format!("{}{dir}__pycache__/{stem}", owner.prefix),
                ),
            );
            request.compile.push(analyze::CompileRequest {
                key,
                file: file.path.display().to_string(),
                filename: format!("{}/{}{}", owner.run_root, owner.prefix, file.relative),
            });
        }
    }
    for (function, files) in handlers {
        let (_, name) = function.handler_parts();
        let file = handler_file(function, files).context("the handler file was found while planning")?;
        request.handlers.push(HandlerRequest {
            key: function.name.clone(),
            file: file.path.display().to_string(),
            name: name.to_string(),
        });
    }
    if request.handlers.is_empty() && request.compile.is_empty() {
        return Ok((BTreeMap::new(), Compiled::new()));
    }
    let answer = analyze::run(python, &request)?;
    let mut compiled = Compiled::new();
    for (key, hex) in &answer.compiled {
        let (Some((owner, stem)), Some(hex)) = (jobs.get(key), hex) else {
            continue;
        };
        let bytes = analyze::from_hex(hex).context("reading compiled bytecode")?;
        let path = format!("{stem}.{}.pyc", answer.cache_tag);
        compiled.entry(owner.clone()).or_default().push((path, bytes));
    }
    let mut verdicts = BTreeMap::new();
    for (function, _) in handlers {
        let verdict = match answer.handlers.get(&function.name) {
            Some(check) if check.ok => None,
            Some(check) => Some(format!(
                "functions.{}.handler: `{}`: {} {}",
                function.name,
                function.handler,
                function.source.display(),
                check.error.as_deref().unwrap_or("is not usable")
            )),
            None => Some(format!("the handler of `{}` was not checked", function.name)),
        };
        verdicts.insert(function.name.clone(), verdict);
    }
    Ok((verdicts, compiled))
}

fn compiled_entries(compiled: &[(String, Vec<u8>)]) -> impl Iterator<Item = Entry> + '_ {
    compiled.iter().map(|(path, bytes)| Entry {
        path: path.clone(),
        content: Content::Bytes(bytes.clone()),
        executable: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_edited_after_it_was_keyed_is_not_zipped() {
        let root = tempfile::tempdir().unwrap();
        let dir = Path::new("lambdas/a");
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
        let path = root.path().join(dir).join("a.py");
        std::fs::write(&path, "V = 1\n").unwrap();
        let files = vec![SourceFile {
            relative: "a.py".to_string(),
            path: path.clone(),
            executable: false,
        }];
        let mut keyed = Inputs::default();
        crate::python::sources::key_files(&mut keyed, dir, &files).unwrap();
        let entries = verified_entries(&files, "python/a/", dir, &keyed).unwrap();
        assert_eq!(entries[0].path, "python/a/a.py");
        assert!(matches!(&entries[0].content, Content::Bytes(bytes) if bytes == b"V = 1\n"));
        std::fs::write(&path, "V = 2\n").unwrap();
        let err = verified_entries(&files, "python/a/", dir, &keyed).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "lambdas/a/a.py changed during the build; run again"
        );
    }
}
