//! Application source folders as they are packaged: build and editor
//! leftovers left out, files that look like secrets refused unless the
//! configuration allows them, symlinks resolved and followed only inside the
//! repository and never to a secret or a version-control folder, unreadable
//! files an error.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::store::archive::is_executable;
use crate::store::inputs::Inputs;

/// Directories never packaged.
const SKIPPED_DIRS: &[&str] = &[
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "tests",
    ".git",
    ".hg",
    ".svn",
];

/// Files never packaged: bytecode, OS and editor leftovers.
fn is_skipped_file(name: &str) -> bool {
    name.ends_with(".pyc")
        || name.ends_with(".pyo")
        || name == ".DS_Store"
        || name.ends_with(".swp")
        || name.ends_with(".swo")
        || name.ends_with('~')
        || name.starts_with(".#")
}

/// Version-control folders: they hold history and often credentials
/// (`.git/config` with a token in a remote URL), never application code.
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn"];

/// Files that look like credentials: refused unless listed in `allow`.
fn looks_like_secret(name: &str) -> bool {
    name.starts_with(".env")
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || name.starts_with("id_rsa")
        || name.starts_with("id_ed25519")
        || name == "credentials"
}

/// One file to package.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the source folder, `/`-separated.
    pub relative: String,
    pub path: PathBuf,
    pub executable: bool,
}

/// `files` of the source folder `dir` as inputs of a key, each labelled
/// by its path under `dir`.
pub fn key_files(inputs: &mut Inputs, dir: &Path, files: &[SourceFile]) -> Result<()> {
    for file in files {
        let label = dir.join(&file.relative).display().to_string();
        inputs.file(&label, &file.path, file.executable)?;
    }
    Ok(())
}

/// The files of `dir` (relative to `root`), sorted. `key` names the
/// configuration entry in errors; `allow` lists secret-looking files that
/// may ship.
pub fn collect(root: &Path, dir: &Path, key: &str, allow: &[String]) -> Result<Vec<SourceFile>> {
    let root = root
        .canonicalize()
        .with_context(|| format!("resolving {}", root.display()))?;
    let start = root.join(dir);
    // The folder itself, or one of its parents, may be a link: what is
    // walked is where it leads, which must be inside the repository too.
    let resolved = start
        .canonicalize()
        .with_context(|| format!("{key}: cannot resolve {}", start.display()))?;
    if resolved != start {
        check_link_target(&root, &start, &resolved, "", key, &[])?;
    }
    let mut files = Vec::new();
    walk(&root, &start, "", key, allow, &mut files, 0)?;
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(files)
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    key: &str,
    allow: &[String],
    files: &mut Vec<SourceFile>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        bail!("{key}: {} is nested too deeply (a symlink loop?)", dir.display());
    }
    let items = fs::read_dir(dir).with_context(|| format!("{key}: cannot list {}", dir.display()))?;
    for item in items {
        let item = item.with_context(|| format!("{key}: cannot list {}", dir.display()))?;
        let path = item.path();
        let name = item
            .file_name()
            .to_str()
            .map(str::to_string)
            .with_context(|| format!("{key}: {} has a name that is not UTF-8", path.display()))?;
        let relative = format!("{prefix}{name}");
        let mut metadata =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if metadata.file_type().is_symlink() {
            let target = path
                .canonicalize()
                .with_context(|| format!("{key}: {} is a broken symlink", path.display()))?;
            check_link_target(root, &path, &target, &relative, key, allow)?;
            metadata = fs::metadata(&target).with_context(|| format!("reading {}", target.display()))?;
        }
        if metadata.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_str()) {
                walk(root, &path, &format!("{relative}/"), key, allow, files, depth + 1)?;
            }
            continue;
        }
        if is_skipped_file(&name) {
            continue;
        }
        if !metadata.is_file() {
            bail!(
                "{key}: {} is not a regular file (a socket, pipe or device cannot be packaged)",
                path.display()
            );
        }
        if looks_like_secret(&name) && !allow.contains(&relative) {
            bail!(
                "{key}: refusing to package {}: it looks like a secret (list \"{relative}\" in `allow` to ship it anyway)",
                path.display()
            );
        }
        File::open(&path).with_context(|| format!("{key}: cannot read {}", path.display()))?;
        files.push(SourceFile {
            relative,
            path,
            executable: is_executable(&metadata),
        });
    }
    Ok(())
}

/// Refuses a link (`link`, shipped as `relative`) whose resolved `target`
/// leaves the repository, is or lies in a version-control folder, or has a
/// name that looks like a secret (unless `relative` is allowed): the filters
/// judge what would ship, not only the name it ships under.
fn check_link_target(
    root: &Path,
    link: &Path,
    target: &Path,
    relative: &str,
    key: &str,
    allow: &[String],
) -> Result<()> {
    let Ok(inside) = target.strip_prefix(root) else {
        bail!(
            "{key}: {} is a symlink to {}, outside the repository (copy it into the repository or remove the link)",
            link.display(),
            target.display()
        );
    };
    let names = inside.iter().map(|part| part.to_string_lossy());
    for name in names {
        if VCS_DIRS.contains(&name.as_ref()) {
            bail!(
                "{key}: refusing to package {}: it is a symlink to {}, inside the version-control folder `{name}` (remove the link)",
                link.display(),
                inside.display()
            );
        }
        if looks_like_secret(&name) && !allow.iter().any(|allowed| allowed == relative) {
            let fix = if relative.is_empty() {
                "point the configuration at the folder itself or remove the link".to_string()
            } else {
                format!("list \"{relative}\" in `allow` to ship it anyway, or remove the link")
            };
            bail!(
                "{key}: refusing to package {}: it is a symlink to {}, which looks like a secret ({fix})",
                link.display(),
                inside.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_skipped_and_secrets_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("src");
        for file in [
            "a.py",
            "pkg/b.py",
            "pkg/__pycache__/b.cpython-311.pyc",
            "tests/test_a.py",
            ".git/config",
            ".hg/hgrc",
            "pkg/.svn/entries",
            ".DS_Store",
            "a.py.swp",
        ] {
            let path = dir.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let files = collect(root.path(), Path::new("src"), "k", &[]).unwrap();
        let names: Vec<_> = files.iter().map(|file| file.relative.as_str()).collect();
        assert_eq!(names, ["a.py", "pkg/b.py"]);

        fs::write(dir.join(".env"), "SECRET=1").unwrap();
        let err = collect(root.path(), Path::new("src"), "k", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(".env") && err.contains("allow"), "{err}");
        assert!(collect(root.path(), Path::new("src"), "k", &[".env".into()]).is_ok());
    }

    #[test]
    fn symlinks_must_stay_inside_the_repository() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("x.py"), "x").unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("src");
        fs::create_dir_all(&dir).unwrap();
        fs::write(root.path().join("inside.py"), "y").unwrap();
        std::os::unix::fs::symlink(root.path().join("inside.py"), dir.join("linked.py")).unwrap();
        let files = collect(root.path(), Path::new("src"), "k", &[]).unwrap();
        assert_eq!(files[0].relative, "linked.py");
        std::os::unix::fs::symlink(outside.path().join("x.py"), dir.join("escape.py")).unwrap();
        let err = collect(root.path(), Path::new("src"), "k", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the repository"), "{err}");
    }
}
