//! Every file a requirements file makes the installer read: the files it
//! includes or constrains (`-r`, `-c`, recursively) and the local folders it
//! finds wheels in (`-f`, `--find-links`). A dependency layer's key covers
//! them all, so editing an included file rebuilds the layer.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

/// The files `requirements` (relative to `root`) depends on, itself first,
/// as paths relative to `root` where they are inside it. `key` names the
/// configuration entry in errors.
pub fn input_files(root: &Path, requirements: &Path, key: &str) -> Result<Vec<PathBuf>> {
    Ok(walk(root, requirements, key)?.files)
}

/// Where a requirements file says distributions are found without an
/// index URL: the local folders of its `--find-links` lines (relative to
/// the repository root) and whether it says `--no-index`. A lock is
/// installed with these and nothing else of its requirements (its hashes
/// decide the bytes; an index URL is the user's configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalSources {
    pub folders: Vec<PathBuf>,
    pub no_index: bool,
}

pub fn local_sources(root: &Path, requirements: &Path, key: &str) -> Result<LocalSources> {
    let walked = walk(root, requirements, key)?;
    Ok(LocalSources {
        no_index: says_no_index(root, &walked.texts),
        folders: walked.folders,
    })
}

struct Walk {
    /// Every file, the requirements file first.
    files: Vec<PathBuf>,
    /// The requirements and constraints files among them.
    texts: Vec<PathBuf>,
    /// The local `--find-links` folders, whether they exist or not.
    folders: Vec<PathBuf>,
}

fn walk(root: &Path, requirements: &Path, key: &str) -> Result<Walk> {
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    let mut folders = Vec::new();
    let mut queue = vec![requirements.to_path_buf()];
    while let Some(file) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let text = fs::read_to_string(root.join(&file))
            .with_context(|| format!("{key}: reading {}", file.display()))?;
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for (line_number, line) in logical_lines(&text) {
            let Some((option, value)) = option_value(&line) else {
                continue;
            };
            let path = dir.join(&value);
            match option {
                Include::File => {
                    if !root.join(&path).is_file() {
                        return Err(crate::ground::error::UsageError::new(format!(
                            "{key}: {} line {line_number} includes {value}, which does not exist (create it or fix the line)",
                            file.display()
                        ))
                        .into());
                    }
                    queue.push(normalize(&path));
                }
                Include::Folder => {
                    if !folders.contains(&normalize(&path)) {
                        folders.push(normalize(&path));
                    }
                    let folder = root.join(&path);
                    if folder.is_dir() {
                        let mut wheels: Vec<PathBuf> = fs::read_dir(&folder)
                            .with_context(|| format!("{key}: listing {}", folder.display()))?
                            .filter_map(|item| item.ok())
                            .map(|item| item.path())
                            .filter(|item| item.is_file())
                            .map(|item| normalize(&path.join(item.file_name().unwrap_or_default())))
                            .collect();
                        wheels.sort();
                        files.extend(wheels);
                    }
                }
            }
        }
        files.push(file);
    }
    let texts: Vec<PathBuf> = seen.into_iter().collect();
    // The requirements file first, then the rest in a stable order.
    files.retain(|file| file != requirements);
    files.sort();
    files.dedup();
    files.insert(0, requirements.to_path_buf());
    Ok(Walk {
        files,
        texts,
        folders,
    })
}

/// Whether any of `files` (relative to `root`) says `--no-index`.
pub fn says_no_index(root: &Path, files: &[PathBuf]) -> bool {
    files.iter().any(|file| {
        fs::read_to_string(root.join(file)).is_ok_and(|text| {
            logical_lines(&text)
                .iter()
                .any(|(_, line)| line.trim() == "--no-index")
        })
    })
}

enum Include {
    /// `-r` / `-c`: a file read like this one.
    File,
    /// `-f`: a folder of distributions, when it is a local path.
    Folder,
}

/// Lines with comments removed and `\` continuations joined, numbered as
/// the file numbers them.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (index, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = index + 1;
        }
        let without_comment = match raw.find(" #").or_else(|| raw.starts_with('#').then_some(0)) {
            Some(at) => &raw[..at],
            None => raw,
        };
        if let Some(joined) = without_comment.strip_suffix('\\') {
            current.push_str(joined);
            current.push(' ');
            continue;
        }
        current.push_str(without_comment);
        lines.push((start, std::mem::take(&mut current)));
    }
    if !current.is_empty() {
        lines.push((start, current));
    }
    lines
}

fn option_value(line: &str) -> Option<(Include, String)> {
    let line = line.trim();
    const OPTIONS: &[(&str, bool)] = &[
        ("--requirement", true),
        ("--constraint", true),
        ("--find-links", false),
        ("-r", true),
        ("-c", true),
        ("-f", false),
    ];
    for (option, is_file) in OPTIONS {
        let Some(rest) = line.strip_prefix(option) else {
            continue;
        };
        let value = rest.trim_start_matches('=').trim();
        if value.is_empty() || (rest.starts_with(|ch: char| ch.is_alphabetic()) && option.starts_with("--")) {
            continue;
        }
        let value = value.trim_matches(|ch| ch == '"' || ch == '\'').to_string();
        if value.contains("://") {
            return None;
        }
        let value = value.strip_prefix("file:").map(str::to_string).unwrap_or(value);
        let kind = if *is_file { Include::File } else { Include::Folder };
        return Some((kind, value));
    }
    None
}

/// `a/./b/../c` → `a/c`, without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_includes_constraints_and_local_wheel_folders() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = root.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write(
            "layers/a/requirements.txt",
            "# pins\n--find-links wheels\n-r ../common.txt\nreq==1.0  # why\n",
        );
        write(
            "layers/common.txt",
            "-c constraints/c.txt\n-r a/requirements.txt\n",
        );
        write("layers/constraints/c.txt", "x<2\n");
        write("layers/a/wheels/req-1.0-py3-none-any.whl", "zip");
        let files = input_files(root.path(), Path::new("layers/a/requirements.txt"), "k").unwrap();
        let names: Vec<String> = files.iter().map(|path| path.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "layers/a/requirements.txt",
                "layers/a/wheels/req-1.0-py3-none-any.whl",
                "layers/common.txt",
                "layers/constraints/c.txt",
            ]
        );
        let local = local_sources(root.path(), Path::new("layers/a/requirements.txt"), "k").unwrap();
        assert_eq!(
            local,
            LocalSources {
                folders: vec![PathBuf::from("layers/a/wheels")],
                no_index: false,
            }
        );
        write("layers/constraints/c.txt", "--no-index\nx<2\n");
        let local = local_sources(root.path(), Path::new("layers/a/requirements.txt"), "k").unwrap();
        assert!(local.no_index, "an included file's --no-index counts");
        write("layers/a/requirements.txt", "-r missing.txt\n");
        let err = input_files(root.path(), Path::new("layers/a/requirements.txt"), "k").unwrap_err();
        assert!(
            format!("{err:#}").contains("line 1 includes missing.txt"),
            "{err:#}"
        );
    }
}
