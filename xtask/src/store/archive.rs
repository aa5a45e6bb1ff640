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
    let temp = crate::ground::atomic::temp_sibling(dest);
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

/// Below this many files one thread compresses them all.
const PARALLEL_FROM: usize = 64;

fn base_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .system(System::Unix)
        .last_modified_time(DateTime::default())
        .large_file(false)
}

/// Writes `order`: with many files, each core deflates a share of them into
/// a ZIP in memory and the entries are then copied, compressed as they
/// are, into the one ZIP in `order`: the bytes one thread would write.
fn write_entries(temp: &Path, order: &[(&str, Option<&Entry>)]) -> Result<Written> {
    let files: Vec<(&str, &Entry)> = order
        .iter()
        .filter_map(|(path, entry)| entry.map(|entry| (*path, entry)))
        .collect();
    let threads = rayon::current_num_threads();
    if files.len() < PARALLEL_FROM || threads < 2 {
        return write_in_order(temp, order);
    }
    use rayon::prelude::*;
    let share = files.len().div_ceil(threads * 4);
    let parts: Vec<(Vec<u8>, u64)> = files
        .par_chunks(share)
        .map(|chunk| -> Result<(Vec<u8>, u64)> {
            let mut zip = ZipWriter::new(io::Cursor::new(Vec::new()));
            let mut size = 0;
            for (path, entry) in chunk {
                size += write_file(&mut zip, path, entry)?;
            }
            Ok((zip.finish()?.into_inner(), size))
        })
        .collect::<Result<_>>()?;
    let file = File::create(temp).with_context(|| format!("creating {}", temp.display()))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let written = Written {
        files: files.len() as u64,
        unzipped_bytes: parts.iter().map(|(_, size)| size).sum(),
        zipped_bytes: 0,
    };
    let mut archives = parts
        .iter()
        .map(|(bytes, _)| ZipArchive::new(io::Cursor::new(bytes.as_slice())))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut part, mut index) = (0, 0);
    for (path, entry) in order {
        if entry.is_none() {
            zip.add_directory(*path, base_options().unix_permissions(DIRECTORY_MODE))?;
            continue;
        }
        if index == archives[part].len() {
            (part, index) = (part + 1, 0);
        }
        zip.raw_copy_file(archives[part].by_index_raw(index)?)?;
        index += 1;
    }
    zip.finish()?
        .into_inner()
        .map_err(|err| err.into_error())?
        .sync_all()?;
    Ok(written)
}

/// Deflates one file into `zip`: its size.
fn write_file<W: Write + io::Seek>(zip: &mut ZipWriter<W>, path: &str, entry: &Entry) -> Result<u64> {
    let mode = if entry.executable {
        EXECUTABLE_MODE
    } else {
        FILE_MODE
    };
    let options = base_options()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .unix_permissions(mode);
    zip.start_file(path, options)?;
    let size = match &entry.content {
        Content::Bytes(bytes) => {
            zip.write_all(bytes)?;
            bytes.len() as u64
        }
        Content::File(source) => {
            let mut reader =
                BufReader::new(File::open(source).with_context(|| format!("reading {}", source.display()))?);
            io::copy(&mut reader, zip).with_context(|| format!("reading {}", source.display()))?
        }
    };
    Ok(size)
}

fn write_in_order(temp: &Path, order: &[(&str, Option<&Entry>)]) -> Result<Written> {
    let file = File::create(temp).with_context(|| format!("creating {}", temp.display()))?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let base = base_options();
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
        written.files += 1;
        written.unzipped_bytes += write_file(&mut zip, path, entry)?;
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
        let entry = archive
            .by_index_raw(index)
            .with_context(|| format!("reading entry {index} of {}", path.display()))?;
        if !entry.is_dir() {
            listed.push(Listed {
                path: entry.name()?.to_string(),
                size: entry.size(),
            });
        }
    }
    Ok(listed)
}

/// How many bytes one archive may unpack to. Nothing bigger can ship (it
/// is Lambda's limit for a function and all its layers together), and an
/// archive's own size fields are not believed: the bytes are counted.
const MAX_UNPACKED_BYTES: u64 = crate::facts::MAX_UNZIPPED_BYTES;

/// Copies `entry` into `out`, at most `left` bytes across one archive's
/// entries; `left` shrinks by what was copied.
/// What a ZIP may unpack to, and how an error names that bound.
const ZIP_LIMIT: (u64, &str) = (MAX_UNPACKED_BYTES, "Lambda's limit unzipped");

fn copy_bounded(
    entry: &mut impl io::Read,
    out: &mut impl Write,
    left: &mut u64,
    (limit, which): (u64, &str),
    zip: &Path,
) -> Result<()> {
    let copied = io::copy(&mut io::Read::take(entry, left.saturating_add(1)), out)
        .with_context(|| format!("reading {}", zip.display()))?;
    *left = left.checked_sub(copied).with_context(|| {
        format!(
            "{} unpacks to more than {limit} bytes, {which} (delete it and build again)",
            zip.display()
        )
    })?;
    Ok(())
}

/// Every file of a ZIP with its bytes and whether it is executable.
pub fn read_entries(path: &Path) -> Result<Vec<(String, Vec<u8>, bool)>> {
    read_entries_within(path, ZIP_LIMIT)
}

/// Like [`read_entries`], up to `limit` bytes unpacked, which the error
/// names as `which` (an image's layer is bounded by the image's limit, not
/// a ZIP's).
pub fn read_entries_up_to(path: &Path, limit: u64, which: &str) -> Result<Vec<(String, Vec<u8>, bool)>> {
    read_entries_within(path, (limit, which))
}

fn read_entries_within(path: &Path, limit: (u64, &str)) -> Result<Vec<(String, Vec<u8>, bool)>> {
    let mut left = limit.0;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive =
        ZipArchive::new(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .with_context(|| format!("reading entry {index} of {}", path.display()))?;
        if entry.is_dir() {
            continue;
        }
        // Never sized from the entry's own claim: the buffer grows with the bytes.
        let mut bytes = Vec::new();
        copy_bounded(&mut entry, &mut bytes, &mut left, limit, path)?;
        let executable = entry.unix_mode().is_some_and(|mode| mode & 0o111 != 0);
        entries.push((entry.name()?.to_string(), bytes, executable));
    }
    Ok(entries)
}

/// Extracts a ZIP into `dest` the way Lambda does: later calls overwrite
/// files an earlier one wrote.
pub fn extract_zip(path: &Path, dest: &Path) -> Result<()> {
    extract_zip_within(path, dest, ZIP_LIMIT)
}

fn extract_zip_within(path: &Path, dest: &Path, limit: (u64, &str)) -> Result<()> {
    let mut left = limit.0;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive =
        ZipArchive::new(BufReader::new(file)).with_context(|| format!("reading {}", path.display()))?;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .with_context(|| format!("reading entry {index} of {}", path.display()))?;
        let Some(relative) = entry.enclosed_name() else {
            bail!(
                "{}: entry `{}` points outside the archive",
                path.display(),
                entry.name()?
            );
        };
        let target = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut out = File::create(&target).with_context(|| format!("writing {}", target.display()))?;
        copy_bounded(&mut entry, &mut out, &mut left, limit, path)?;
        if let Some(mode) = entry.unix_mode() {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode & 0o777))
                .with_context(|| format!("setting the mode of {}", target.display()))?;
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

    #[test]
    fn many_files_deflated_in_parallel_give_the_bytes_of_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = Vec::new();
        for index in 0..300 {
            let path = dir.path().join(format!("pkg{}/mod{index}.py", index % 7));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = format!("X = {index}\n").repeat(index % 50);
            fs::write(&path, text).unwrap();
            entries.push(Entry {
                path: format!("python/pkg{}/mod{index}.py", index % 7),
                content: Content::File(path),
                executable: index % 11 == 0,
            });
        }
        entries.push(Entry {
            path: "python/empty".to_string(),
            content: Content::Bytes(Vec::new()),
            executable: false,
        });
        let parallel = dir.path().join("parallel.zip");
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let written = pool.install(|| write_zip(&parallel, entries.clone())).unwrap();
        let alone = dir.path().join("alone.zip");
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let single = one.install(|| write_zip(&alone, entries.clone())).unwrap();
        assert_eq!(written, single);
        assert!(
            fs::read(&parallel).unwrap() == fs::read(&alone).unwrap(),
            "the same bytes"
        );
    }
    use crate::ground::digest::file_sha256;

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

    /// A real archive from the writer: a directory, a deflated text file,
    /// incompressible bytes and an executable.
    fn sample_zip(dir: &Path) -> (PathBuf, Vec<(String, Vec<u8>, bool)>) {
        let mut noise = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..3000)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect();
        let files = vec![
            (
                "python/pkg/__init__.py".to_string(),
                b"x = 1\n".repeat(200),
                false,
            ),
            ("python/pkg/noise.bin".to_string(), noise, false),
            ("python/tool".to_string(), b"#!/bin/sh\n".to_vec(), true),
        ];
        let entries = files
            .iter()
            .map(|(path, bytes, executable)| Entry {
                path: path.clone(),
                content: Content::Bytes(bytes.clone()),
                executable: *executable,
            })
            .collect();
        let zip = dir.join("sample.zip");
        write_zip(&zip, entries).unwrap();
        (zip, files)
    }

    /// Where the central directory starts and how many bytes it has, from
    /// the end record the writer puts last (it writes no comment).
    fn central_directory(bytes: &[u8]) -> (usize, usize) {
        let end = bytes.len() - 22;
        assert_eq!(&bytes[end..end + 4], b"PK\x05\x06");
        let size = u32::from_le_bytes(bytes[end + 12..end + 16].try_into().unwrap()) as usize;
        let start = u32::from_le_bytes(bytes[end + 16..end + 20].try_into().unwrap()) as usize;
        (start, size)
    }

    #[test]
    fn an_entry_that_claims_a_huge_size_is_not_believed() {
        let dir = tempfile::tempdir().unwrap();
        let (zip, files) = sample_zip(dir.path());
        let mut bytes = fs::read(&zip).unwrap();
        let (start, size) = central_directory(&bytes);
        // The first file's central record claims 2^40 bytes through a ZIP64
        // extra field; the data is what it was.
        let mut at = start;
        let (name, file) = loop {
            assert_eq!(&bytes[at..at + 4], b"PK\x01\x02");
            let name = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
            let path = std::str::from_utf8(&bytes[at + 46..at + 46 + name]).unwrap();
            if !path.ends_with('/') {
                break (name, path.to_string());
            }
            // The writer adds no extra field and no comment.
            at += 46 + name;
        };
        bytes[at + 24..at + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[at + 30..at + 32].copy_from_slice(&12u16.to_le_bytes());
        let mut extra = vec![1, 0, 8, 0];
        extra.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let insert = at + 46 + name;
        bytes.splice(insert..insert, extra);
        let end = bytes.len() - 22;
        bytes[end + 12..end + 16].copy_from_slice(&(size as u32 + 12).to_le_bytes());
        fs::write(&zip, &bytes).unwrap();

        // The claim may be refused or ignored; what is read is the real bytes.
        if let Ok(read) = read_entries(&zip) {
            let (_, content, _) = read.iter().find(|(path, _, _)| *path == file).unwrap();
            let (_, expected, _) = files.iter().find(|(path, _, _)| *path == file).unwrap();
            assert_eq!(content, expected);
        }
        let _ = extract_zip(&zip, &dir.path().join("out"));
    }

    #[test]
    fn unpacking_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (zip, files) = sample_zip(dir.path());
        let total: u64 = files.iter().map(|(_, bytes, _)| bytes.len() as u64).sum();
        let bound = |bytes| (bytes, "the test's bound");
        assert_eq!(
            read_entries_within(&zip, bound(total)).unwrap().len(),
            files.len()
        );
        let err = read_entries_within(&zip, bound(total - 1))
            .unwrap_err()
            .to_string();
        // The error names the bound it crossed, not always a ZIP's.
        assert!(
            err.contains(&format!(
                "unpacks to more than {} bytes, the test's bound",
                total - 1
            )),
            "{err}"
        );
        extract_zip_within(&zip, &dir.path().join("fits"), bound(total)).unwrap();
        let err = extract_zip_within(&zip, &dir.path().join("too-big"), bound(total - 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unpacks to more than"), "{err}");
    }

    /// Truncated, mutated and random archives give an error or a result,
    /// never a panic; the writer's archive still round-trips through every
    /// reader. A fixed seed keeps the cases the same on every run.
    #[test]
    fn random_truncated_and_mutated_archives_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (zip, files) = sample_zip(dir.path());
        let original = fs::read(&zip).unwrap();
        let read = read_entries(&zip).unwrap();
        assert_eq!(read, files);
        let listed = list_zip(&zip).unwrap();
        assert_eq!(listed.len(), files.len());
        extract_zip(&zip, &dir.path().join("out")).unwrap();
        for (path, bytes, executable) in &files {
            let target = dir.path().join("out").join(path);
            assert_eq!(&fs::read(&target).unwrap(), bytes);
            assert_eq!(is_executable(&fs::metadata(&target).unwrap()), *executable);
        }

        let (start, size) = central_directory(&original);
        let hot = [(0, 64), (start, size + 22)];
        let extremes = [0u32, 1, 0xff, 0xffff, 0x7fff_ffff, 0xffff_fffe, 0xffff_ffff];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound.max(1) as u64) as usize
        };
        let case_zip = dir.path().join("case.zip");
        let out = dir.path().join("case");
        for case in 0..400 {
            let mut bytes = original.clone();
            match case % 4 {
                0 => bytes.truncate(random(original.len())),
                1 => {
                    let (at, len) = hot[random(hot.len())];
                    for _ in 0..1 + random(6) {
                        bytes[at + random(len)] = random(256) as u8;
                    }
                }
                2 => {
                    let (at, len) = hot[random(hot.len())];
                    let at = (at + random(len)).min(bytes.len() - 4);
                    let value = extremes[random(extremes.len())];
                    let width = [2, 4][random(2)];
                    bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
                _ => {
                    bytes = (0..random(4096)).map(|_| random(256) as u8).collect();
                    if bytes.len() >= 22 && random(2) == 0 {
                        let end = bytes.len() - 22;
                        bytes[end..end + 4].copy_from_slice(b"PK\x05\x06");
                    }
                }
            }
            fs::write(&case_zip, &bytes).unwrap();
            let _ = list_zip(&case_zip);
            let _ = read_entries(&case_zip);
            let _ = extract_zip(&case_zip, &out);
            let _ = fs::remove_dir_all(&out);
        }
    }
}
