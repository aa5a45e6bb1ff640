//! The one ZIP writer of the tool, deterministic by construction: entries
//! sorted by their `/`-separated path, every parent directory present,
//! 1980-01-01 timestamps, 0644 files, 0755 directories and executables, no
//! extra fields. The same inputs give the same bytes whatever the checkout
//! path, the umask, the file mtimes or the machine; so Terraform sees no
//! change when nothing changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipArchive, ZipWriter};

/// The normalisation rules, in one place.
const FILE_MODE: u32 = 0o644;
const EXECUTABLE_MODE: u32 = 0o755;
const DIRECTORY_MODE: u32 = 0o755;
const DEFLATE_LEVEL: i64 = 6;

/// Where an entry's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One file of an archive.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the archive, `/`-separated, no leading `/`.
    pub path: String,
    pub content: Content,
    pub executable: bool,
}

pub fn is_executable(metadata: &fs::Metadata) -> bool {
    metadata.permissions().mode() & 0o111 != 0
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub files: u64,
    pub unzipped_bytes: u64,
    pub zipped_bytes: u64,
}

/// Writes `entries` to `dest` atomically: a temporary sibling renamed into
/// place, so an interrupted write never leaves a half ZIP under that name.
pub fn write_zip(dest: &Path, entries: Vec<Entry>) -> Result<Written> {
    let mut by_path: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in entries {
        check_entry_path(&entry.path)?;
        if let Some(previous) = by_path.insert(entry.path.clone(), entry) {
            bail!(
                "two files would be stored as `{}` in {}",
                previous.path,
                dest.display()
            );
        }
    }
    let mut directories = BTreeSet::new();
    for path in by_path.keys() {
        let mut parent = path.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            directories.insert(format!("{dir}/"));
            parent = dir;
        }
    }
    for dir in &directories {
        if by_path.contains_key(dir.trim_end_matches('/')) {
            bail!(
                "`{}` is both a file and a directory in {}",
                dir.trim_end_matches('/'),
                dest.display()
            );
        }
    }
    // Directories and files in one sorted order: "a/" sorts before "a/b".
    let mut order: Vec<(&str, Option<&Entry>)> = directories.iter().map(|dir| (dir.as_str(), None)).collect();
    order.extend(by_path.iter().map(|(path, entry)| (path.as_str(), Some(entry))));
    order.sort_by(|a, b| a.0.cmp(b.0));

    let parent = dest.parent().context("a ZIP path has a parent directory")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let temp = crate::atomic::temp_sibling(dest);
    let result = write_entries(&temp, &order);
    match result {
        Ok(mut written) => {
            written.zipped_bytes = fs::metadata(&temp)?.len();
            fs::rename(&temp, dest).with_context(|| format!("moving the new ZIP to {}", dest.display()))?;
            Ok(written)
        }
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err(err.context(format!("writing {}", dest.display())))
        }
    }
}

fn write_entries(temp: &Path, order: &[(&str, Option<&Entry>)]) -> Result<Written> {
    let file = File::create(temp).with_context(|| format!("creating {}", temp.display()))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let base = SimpleFileOptions::default()
        .system(System::Unix)
        .last_modified_time(DateTime::default())
        .large_file(false);
    let mut written = Written {
        files: 0,
        unzipped_bytes: 0,
        zipped_bytes: 0,
    };
    for (path, entry) in order {
        let Some(entry) = entry else {
            zip.add_directory(*path, base.unix_permissions(DIRECTORY_MODE))?;
            continue;
        };
        let mode = if entry.executable {
            EXECUTABLE_MODE
        } else {
            FILE_MODE
        };
        let options = base
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(DEFLATE_LEVEL))
            .unix_permissions(mode);
        zip.start_file(*path, options)?;
        let size = match &entry.content {
            Content::Bytes(bytes) => {
                zip.write_all(bytes)?;
                bytes.len() as u64
            }
            Content::File(source) => {
                let mut reader = BufReader::new(
                    File::open(source).with_context(|| format!("reading {}", source.display()))?,
                );
                io::copy(&mut reader, &mut zip).with_context(|| format!("reading {}", source.display()))?
            }
        };
        written.files += 1;
        written.unzipped_bytes += size;
    }
    zip.finish()?
        .into_inner()
        .map_err(|err| err.into_error())?
        .sync_all()?;
    Ok(written)
}

fn check_entry_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.ends_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        bail!("`{path}` is not a valid path inside a ZIP");
    }
    Ok(())
}

/// A file listed in an existing ZIP.
#[derive(Debug, Clone)]
pub struct Listed {
    pub path: String,
    /// Its size once extracted, as the central directory records it.
    pub size: u64,
}

/// The files (not directories) of a ZIP, from its central directory only.
pub fn list_zip(path: &Path) -> Result<Vec<Listed>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive =
        ZipArchive::new(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    let mut listed = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index)?;
        if !entry.is_dir() {
            listed.push(Listed {
                path: entry.name()?.to_string(),
                size: entry.size(),
            });
        }
    }
    Ok(listed)
}

/// Every file of a ZIP with its bytes and whether it is executable.
pub fn read_entries(path: &Path) -> Result<Vec<(String, Vec<u8>, bool)>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive =
        ZipArchive::new(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    let mut entries = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        if entry.is_dir() {
            continue;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        io::Read::read_to_end(&mut entry, &mut bytes)?;
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        entries.push((entry.name()?.to_string(), bytes, executable));
    }
    Ok(entries)
}

/// Extracts a ZIP into `dest` the way Lambda does: later calls overwrite
/// files an earlier one wrote.
pub fn extract_zip(path: &Path, dest: &Path) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive =
        ZipArchive::new(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index)?;
        let Some(relative) = entry.enclosed_name() else {
            bail!(
                "{}: entry `{}` points outside the archive",
                path.display(),
                entry.name()?
            );
        };
        let target = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut out = File::create(&target).with_context(|| format!("writing {}", target.display()))?;
        io::copy(&mut entry, &mut out)?;
        if let Some(mode) = entry.unix_mode() {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

/// Every file under `dir`, as entries named `prefix` + its relative path,
/// following symlinks. The caller filters before writing.
pub fn tree_entries(dir: &Path, prefix: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for item in fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))? {
            let item = item?;
            let path = item.path();
            let metadata = fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            if metadata.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(dir).expect("walked from dir");
            let name = relative
                .to_str()
                .with_context(|| format!("{} is not valid UTF-8", path.display()))?
                .replace(std::path::MAIN_SEPARATOR, "/");
            entries.push(Entry {
                path: format!("{prefix}{name}"),
                content: Content::File(path),
                executable: is_executable(&metadata),
            });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::file_sha256;

    fn tree(root: &Path, mode: u32) {
        fs::create_dir_all(root.join("python/pkg/sub")).unwrap();
        fs::write(root.join("python/pkg/__init__.py"), "x = 1\n").unwrap();
        fs::write(root.join("python/pkg/sub/data.txt"), "data\n".repeat(1000)).unwrap();
        fs::write(root.join("python/tool"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("python/tool"), fs::Permissions::from_mode(0o700)).unwrap();
        fs::set_permissions(
            root.join("python/pkg/__init__.py"),
            fs::Permissions::from_mode(mode),
        )
        .unwrap();
    }

    #[test]
    fn same_tree_same_bytes_whatever_mode_path_or_mtime() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        tree(one.path(), 0o600);
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(&two.path().join("elsewhere"), 0o664);
        let a = one.path().join("a.zip");
        let b = two.path().join("b.zip");
        let written = write_zip(&a, tree_entries(one.path(), "").unwrap()).unwrap();
        write_zip(&b, tree_entries(&two.path().join("elsewhere"), "").unwrap()).unwrap();
        assert_eq!(file_sha256(&a).unwrap().hex, file_sha256(&b).unwrap().hex);
        assert_eq!(written.files, 3);
        assert_eq!(written.unzipped_bytes, 6 + 5000 + 10);

        let mut archive = ZipArchive::new(File::open(&a).unwrap()).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|name| name.unwrap().to_string())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names[0], "python/");
        for index in 0..archive.len() {
            let entry = archive.by_index(index).unwrap();
            let expected = match entry.name().unwrap().as_ref() {
                "python/tool" => 0o755,
                name if name.ends_with('/') => 0o755,
                _ => 0o644,
            };
            assert_eq!(
                entry.unix_mode().unwrap() & 0o777,
                expected,
                "{}",
                entry.name().unwrap()
            );
            assert_eq!(entry.last_modified().unwrap(), DateTime::default());
            assert!(entry.extra_data().is_none_or(|extra| extra.is_empty()));
        }
    }

    #[test]
    fn rejects_unsafe_and_duplicate_paths() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.zip");
        let entry = |path: &str| Entry {
            path: path.into(),
            content: Content::Bytes(vec![]),
            executable: false,
        };
        assert!(write_zip(&dest, vec![entry("../evil")]).is_err());
        assert!(write_zip(&dest, vec![entry("/abs")]).is_err());
        assert!(write_zip(&dest, vec![entry("a"), entry("a")]).is_err());
        assert!(write_zip(&dest, vec![entry("a"), entry("a/b")]).is_err());
        assert!(!dest.exists(), "a refused archive leaves nothing behind");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn extract_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        tree(&dir.path().join("src"), 0o644);
        let zip = dir.path().join("x.zip");
        write_zip(&zip, tree_entries(&dir.path().join("src"), "").unwrap()).unwrap();
        extract_zip(&zip, &dir.path().join("out")).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("out/python/pkg/__init__.py")).unwrap(),
            "x = 1\n"
        );
        let listed = list_zip(&zip).unwrap();
        assert_eq!(listed.len(), 3);
    }
}
