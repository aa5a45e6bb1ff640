//! A local OSV export: a folder of `<ID>.json` records, or the ZIP OSV
//! publishes per ecosystem, each record read within a size bound.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::record::{parse_record, Loaded, Parsed, RECORD_LIMIT};
use crate::ground::error::UsageError;

/// Names a local OSV export: a folder of `<ID>.json` records, or OSV's
/// per-ecosystem `all.zip`.
pub const DB_VARIABLE: &str = "XTASK_OSV_DB";

/// A folder (every `*.json` below it) or a ZIP of records.
pub(super) fn read_export(path: &Path, wanted: &BTreeMap<String, BTreeSet<String>>) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut keep = |origin: &str, bytes: &[u8]| -> Result<()> {
        loaded.records += 1;
        match parse_record(bytes).map_err(|err| {
            UsageError::new(format!(
                "{DB_VARIABLE}: {origin}: not an OSV record: {err} (point it at a folder of OSV JSON files or OSV's all.zip for PyPI)"
            ))
        })? {
            Parsed::Withdrawn => loaded.withdrawn += 1,
            Parsed::Advisory(advisory) => {
                if advisory.affected.iter().any(|affected| wanted.contains_key(&affected.name)) {
                    loaded.advisories.push(advisory);
                }
            }
        }
        Ok(())
    };
    let metadata = std::fs::metadata(path).map_err(|err| {
        UsageError::new(format!(
            "{DB_VARIABLE}: {}: {err} (name a folder of OSV JSON files or OSV's all.zip for PyPI, or unset it to ask OSV's API)",
            path.display()
        ))
    })?;
    if metadata.is_dir() {
        let mut files = Vec::new();
        json_files(path, &mut files)?;
        files.sort();
        for file in files {
            let bytes = read_bounded(File::open(&file), &file.display().to_string())?;
            keep(&file.display().to_string(), &bytes)?;
        }
    } else {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|err| {
            UsageError::new(format!(
                "{DB_VARIABLE}: {}: neither a folder nor a ZIP of OSV records: {err}",
                path.display()
            ))
        })?;
        for index in 0..archive.len() {
            let entry = archive.by_index(index);
            let origin = format!("{} (entry {index})", path.display());
            let mut entry =
                entry.map_err(|err| UsageError::new(format!("{DB_VARIABLE}: {origin}: {err}")))?;
            let name = entry.name().unwrap_or_default().to_string();
            if entry.is_dir() || !name.ends_with(".json") {
                continue;
            }
            let origin = format!("{}: {name}", path.display());
            let bytes = read_bounded(Ok(&mut entry), &origin)?;
            keep(&origin, &bytes)?;
        }
    }
    Ok(loaded)
}

fn json_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.is_dir() {
            json_files(&path, files)?;
        } else if path.extension().is_some_and(|extension| extension == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// At most [`RECORD_LIMIT`] bytes of a record, counted as read.
fn read_bounded(reader: std::io::Result<impl Read>, origin: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .and_then(|reader| reader.take(RECORD_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|err| UsageError::new(format!("{DB_VARIABLE}: {origin}: {err}")))?;
    if bytes.len() as u64 > RECORD_LIMIT {
        return Err(UsageError::new(format!(
            "{DB_VARIABLE}: {origin}: more than {RECORD_LIMIT} bytes, larger than any OSV record"
        ))
        .into());
    }
    Ok(bytes)
}
