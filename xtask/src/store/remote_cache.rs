//! The remote cache: dependency layers shared between machines through an
//! S3 bucket (`remote_cache = "s3://bucket/prefix"`). An entry is the
//! local store's entry of a dependency layer, under the same key:
//! `<prefix>/<kind>/<key>/layer.zip` and `<prefix>/<kind>/<key>/meta.json`
//! (every file's sha256 and size, and the node's data). Writers upload the
//! files first and the meta last, so an entry is visible only once whole.
//!
//! Nothing fetched is believed: downloads are bounded by our own limits,
//! each file must match the sha256 its meta names, and the caller recomputes
//! the node's data from the bytes (and proves the layer) before the entry
//! may enter the local store. Requests are signed with SigV4 (`sigv4.rs`)
//! with the credentials of the standard AWS environment (`aws.rs`) and sent
//! by `curl` (`s3.rs`). A remote that does not answer never fails
//! a build: the first failure says so once, and the run stops asking it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ground::digest::{bytes_sha256, file_sha256};
use crate::ground::progress::Printer;
use crate::store::{Entry, Store};

pub(in crate::store) mod aws;
mod s3;
mod settings;
pub(in crate::store) mod sigv4;

pub use settings::{with_env, Mode, Settings, ENV_MODE, ENV_URL};

use s3::{Answer, Failure, S3};

/// The most a meta.json may hold: file names, digests and a layer's inventory.
const META_LIMIT: u64 = 4 * 1024 * 1024;
const META: &str = "meta.json";
const FORMAT: u32 = 1;

/// What the remote holds of one entry: its files and the node's data (a
/// claim: the fetcher recomputes it from the files).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteMeta {
    format: u32,
    files: Vec<RemoteFile>,
    data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteFile {
    name: String,
    sha256: String,
    bytes: u64,
}

/// The files a fetched entry must have, each with the most bytes it may
/// have: `(name, limit)`.
pub type Expected<'a> = &'a [(&'a str, u64)];

/// The entry a fetch asks for: its kind's folder and key, and the node's
/// id for messages.
#[derive(Clone, Copy)]
pub struct Wanted<'a> {
    pub kind: &'a str,
    pub key: &'a str,
    pub id: &'a str,
}

pub struct RemoteCache {
    settings: Settings,
    s3: S3,
    /// Set at the first request the remote did not answer: the rest of the
    /// run builds locally without asking again.
    down: AtomicBool,
    /// Whether the run was told which remote cache it uses.
    announced: AtomicBool,
}

impl RemoteCache {
    /// The remote cache of these settings, with the endpoint, region and
    /// credentials of the standard AWS environment and files.
    pub fn open(settings: &Settings, _: &Printer) -> Result<Option<RemoteCache>> {
        Ok(Some(RemoteCache {
            settings: settings.clone(),
            s3: S3::new(settings)?,
            down: AtomicBool::new(false),
            announced: AtomicBool::new(false),
        }))
    }

    pub fn url(&self) -> String {
        self.settings.url()
    }

    /// `s3://bucket/prefix (read-only)`, the first time it is asked in a run.
    pub fn announce(&self) -> Option<String> {
        (!self.announced.swap(true, Ordering::SeqCst))
            .then(|| format!("{} ({})", self.url(), self.settings.mode.name()))
    }

    fn object(&self, kind: &str, key: &str, name: &str) -> String {
        if self.settings.prefix.is_empty() {
            format!("{kind}/{key}/{name}")
        } else {
            format!("{}/{kind}/{key}/{name}", self.settings.prefix)
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Marks the remote as unusable for the rest of the run; the first to
    /// do so says why.
    fn give_up(&self, printer: &Printer, failure: Failure) {
        if self.down.swap(true, Ordering::SeqCst) {
            return;
        }
        let url = self.url();
        let then = "building locally, without it for the rest of this run";
        printer.warn(&match failure {
            Failure::Unavailable(why) => format!("remote cache {url} does not answer ({why}): {then}"),
            Failure::Refused(why) => format!("remote cache {url} refused access: {why}; {then}"),
            Failure::TooLarge => format!("remote cache {url} sent more than was asked for: {then}"),
        });
    }

    /// Fetches the entry of `kind`/`key` into the local store. Its meta and
    /// files are downloaded within our own limits (`expected`), each file
    /// verified against its sha256, and `verify` gives the node's data from
    /// the files themselves (the meta's `data` is only a claim to compare
    /// with) or why the entry is not taken. `None`: not there, not usable
    /// (said with a warning) or the remote does not answer; build it.
    pub fn fetch(
        &self,
        store: &Store,
        wanted: Wanted,
        printer: &Printer,
        expected: Expected,
        verify: &dyn Fn(&Path, &serde_json::Value) -> Result<serde_json::Value, String>,
    ) -> Option<Entry> {
        let Wanted { kind, key, id } = wanted;
        if self.is_down() {
            return None;
        }
        let temp = match crate::ground::atomic::TempDir::beside(&store.entry_dir(kind, key)) {
            Ok(temp) => temp,
            Err(_) => {
                let _ = std::fs::create_dir_all(store.kind_dir(kind));
                crate::ground::atomic::TempDir::beside(&store.entry_dir(kind, key)).ok()?
            }
        };
        let reject = |why: String| {
            printer.warn(&format!(
                "{id}: discarding the remote cache entry {}: {why}; building it",
                self.object(kind, key, "")
            ));
            None
        };
        let meta_path = temp.path().join(META);
        match self.s3.get(&self.object(kind, key, META), &meta_path, META_LIMIT) {
            Ok(Answer::Ok) => {}
            Ok(Answer::NotFound) => return None,
            Err(Failure::TooLarge) => return reject(format!("{META} is over {META_LIMIT} bytes")),
            Err(failure) => {
                self.give_up(printer, failure);
                return None;
            }
        }
        let meta: RemoteMeta = match std::fs::read(&meta_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            Some(meta) => meta,
            None => return reject(format!("{META} is not valid")),
        };
        if meta.format != FORMAT {
            return reject(format!("{META} is of another format"));
        }
        let mut names: Vec<&str> = meta.files.iter().map(|file| file.name.as_str()).collect();
        names.sort_unstable();
        let mut wanted: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
        wanted.sort_unstable();
        if names != wanted {
            return reject(format!("{META} names the files {names:?}, not {wanted:?}"));
        }
        let downloads = temp.path().join("files");
        if std::fs::create_dir(&downloads).is_err() {
            return None;
        }
        for file in &meta.files {
            let limit = expected
                .iter()
                .find(|(name, _)| *name == file.name)
                .map_or(0, |(_, limit)| *limit);
            if file.bytes > limit {
                return reject(format!(
                    "{} is said to have {} bytes, more than the {limit} it may have",
                    file.name, file.bytes
                ));
            }
            let path = downloads.join(&file.name);
            match self.s3.get(&self.object(kind, key, &file.name), &path, limit) {
                Ok(Answer::Ok) => {}
                Ok(Answer::NotFound) => return reject(format!("{} is missing", file.name)),
                Err(Failure::TooLarge) => {
                    return reject(format!(
                        "{} has more than the {limit} bytes it may have",
                        file.name
                    ))
                }
                Err(failure) => {
                    self.give_up(printer, failure);
                    return None;
                }
            }
            let size = std::fs::metadata(&path).map_or(u64::MAX, |metadata| metadata.len());
            match file_sha256(&path) {
                Ok(digest) if digest.hex == file.sha256 && size == file.bytes => {}
                _ => return reject(format!("{} does not match its recorded sha256", file.name)),
            }
        }
        let data = match verify(&downloads, &meta.data) {
            Ok(data) => data,
            Err(why) => return reject(why),
        };
        let files: Vec<PathBuf> = meta.files.iter().map(|file| downloads.join(&file.name)).collect();
        match store.put(kind, key, |dir| {
            for path in &files {
                std::fs::rename(path, dir.join(path.file_name().expect("a file name")))?;
            }
            Ok(data)
        }) {
            Ok(entry) => Some(entry),
            Err(err) => {
                printer.warn(&format!("{id}: storing the remote cache entry failed: {err:#}"));
                None
            }
        }
    }

    /// Uploads a local entry (read-write only): its files first, its meta
    /// last, so readers see it only once whole. Never fails the build.
    pub fn upload(&self, kind: &str, key: &str, entry: &Entry, printer: &Printer) {
        if self.settings.mode == Mode::ReadOnly || self.is_down() {
            return;
        }
        let meta = RemoteMeta {
            format: FORMAT,
            files: entry
                .files
                .iter()
                .map(|file| RemoteFile {
                    name: file.name.clone(),
                    sha256: file.sha256.clone(),
                    bytes: file.bytes,
                })
                .collect(),
            data: entry.data.clone(),
        };
        let mut uploads: Vec<(String, PathBuf, String)> = entry
            .files
            .iter()
            .map(|file| (file.name.clone(), entry.dir.join(&file.name), file.sha256.clone()))
            .collect();
        let Ok(temp) = crate::ground::atomic::TempDir::beside(&entry.dir) else {
            return;
        };
        let meta_path = temp.path().join(META);
        let bytes = serde_json::to_vec_pretty(&meta).expect("a meta serializes");
        if std::fs::write(&meta_path, &bytes).is_err() {
            return;
        }
        uploads.push((META.to_string(), meta_path, bytes_sha256(&bytes)));
        for (name, path, sha256) in uploads {
            if let Err(failure) = self.s3.put(&self.object(kind, key, &name), &path, &sha256) {
                self.give_up(printer, failure);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read() {
        let settings = Settings::parse("k", "s3://my-bucket/ci/layers/", Mode::ReadOnly).unwrap();
        assert_eq!(settings.bucket, "my-bucket");
        assert_eq!(settings.prefix, "ci/layers");
        assert_eq!(settings.url(), "s3://my-bucket/ci/layers");
        assert!(Settings::parse("k", "https://x/y", Mode::ReadWrite)
            .unwrap_err()
            .contains("s3://"));
        assert!(Settings::parse("k", "s3://Bad_Bucket", Mode::ReadWrite).is_err());
    }
}
