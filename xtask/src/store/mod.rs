//! The store wing: what a run keeps and how it is named. Imports only
//! the ground floor (the files directly in `src/`).
//!
//! - this file: the content-addressed store of node outputs;
//! - `inputs`: a node's labelled inputs, the key made of them, and the
//!   records that say why a node is stale;
//! - `tools`: what the tools a run uses were found to be, remembered;
//! - `archive`: the one deterministic ZIP writer and reader;
//! - `curl`: HTTP through curl, its configuration on its standard input;
//! - `oci`: the one deterministic writer of container image parts (layer
//!   tars, config, manifest, the OCI image layout), for `package = "image"`;
//! - `registry`: container registries (OCI distribution API): base images
//!   pulled by digest, images pushed;
//! - `remote_cache`: entries shared between machines through S3;
//! - `run_lock`: one run at a time in a repository;
//! - `user_cache`: the cache every repository of the user shares
//!   (finished distributions), its bound and pruning.
//!
//! The content-addressed store under `target/lambda/store/<kind>/<key>/`:
//! one entry per node key, holding the node's output files and a
//! `meta.json` that records each file's sha256 and the node's data, sealed
//! by a checksum of its own. Entries are written whole (a temporary
//! sibling renamed into place); a reused entry is verified first, cheaply
//! by each file's size, mtime and inode, else by its sha256.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub mod archive;
pub mod curl;
pub mod inputs;
pub mod oci;
pub mod registry;
pub mod remote_cache;
pub mod run_lock;
pub mod tools;
pub mod user_cache;

use crate::ground::atomic::{write_atomic, TempDir};
use crate::ground::digest::{bytes_sha256, file_sha256, KeyHasher};

const META: &str = "meta.json";

/// One output file of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    pub name: String,
    pub sha256: String,
    pub base64sha256: String,
    pub bytes: u64,
    /// Size, mtime and inode when it was stored: unchanged means unchanged.
    pub stamp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Body {
    files: Vec<OutputFile>,
    data: serde_json::Value,
}

/// A verified entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dir: PathBuf,
    pub files: Vec<OutputFile>,
    pub data: serde_json::Value,
    /// Verified by hash because a file's stamp had changed (a copied
    /// checkout): worth restamping.
    pub rehashed: bool,
    /// Made when a dependant first asks: checks and smoke tests have none.
    digest: std::sync::OnceLock<String>,
}

impl Entry {
    fn new(dir: PathBuf, body: Body, rehashed: bool) -> Entry {
        Entry {
            dir,
            files: body.files,
            data: body.data,
            rehashed,
            digest: std::sync::OnceLock::new(),
        }
    }

    pub fn file(&self, name: &str) -> Option<&OutputFile> {
        self.files.iter().find(|file| file.name == name)
    }

    /// What the entry holds, without where or when it was stored: the
    /// digest its dependants' keys use, so that a rebuild that gives the
    /// same bytes leaves them fresh.
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| {
            let mut key = KeyHasher::default();
            for file in &self.files {
                key.part(&file.name, &file.sha256);
            }
            key.part("data", self.data.to_string());
            key.hex()
        })
    }
}

/// Which files of an entry's folder are its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// The files directly in it.
    Top,
    /// Every file below it.
    Tree,
}

pub enum Lookup {
    Hit(Entry),
    Miss,
    /// An entry is there but does not match what it recorded.
    Damaged(String),
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(cache_dir: &Path) -> Store {
        Store::at(cache_dir.join("store"))
    }

    /// A store whose kinds are folders of `dir` (the finished-wheel cache
    /// shared by every repository: [`user_cache`]).
    pub fn at(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn kind_dir(&self, kind: &str) -> PathBuf {
        self.dir.join(kind)
    }

    pub fn entry_dir(&self, kind: &str, key: &str) -> PathBuf {
        self.kind_dir(kind).join(key)
    }

    /// The entry for `key`, verified. Reads only: a damaged entry is
    /// reported, and removed by [`Store::discard`] in a run.
    pub fn lookup(&self, kind: &str, key: &str) -> Lookup {
        let dir = self.entry_dir(kind, key);
        let meta = dir.join(META);
        let bytes = match fs::read(&meta) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return if dir.exists() {
                    Lookup::Damaged(format!("{META} is missing"))
                } else {
                    Lookup::Miss
                };
            }
            Err(err) => return Lookup::Damaged(format!("{META} cannot be read: {err}")),
        };
        // `<sha256 of the body>\n<body>`: the seal is checked on the bytes
        // as they are, before they are trusted or even parsed.
        let Some(newline) = bytes.iter().position(|&byte| byte == b'\n') else {
            return Lookup::Damaged(format!("{META} is not valid"));
        };
        let (seal, body) = (&bytes[..newline], &bytes[newline + 1..]);
        if seal != bytes_sha256(body).as_bytes() {
            return Lookup::Damaged(format!("{META} was changed after it was written"));
        }
        let Ok(body) = serde_json::from_slice::<Body>(body) else {
            return Lookup::Damaged(format!("{META} is not valid"));
        };
        let mut rehashed = false;
        for file in &body.files {
            let path = dir.join(&file.name);
            match fs::metadata(&path) {
                Ok(metadata) if stamp(&metadata) == file.stamp => {}
                Ok(metadata) if metadata.len() == file.bytes => match file_sha256(&path) {
                    Ok(digest) if digest.hex == file.sha256 => rehashed = true,
                    _ => return Lookup::Damaged(format!("{} does not match its recorded sha256", file.name)),
                },
                Ok(metadata) => {
                    return Lookup::Damaged(format!(
                        "{} has {} bytes, {} recorded",
                        file.name,
                        metadata.len(),
                        file.bytes
                    ))
                }
                Err(_) => return Lookup::Damaged(format!("{} is missing", file.name)),
            }
        }
        Lookup::Hit(Entry::new(dir, body, rehashed))
    }

    /// Builds an entry: `build` writes the output files into a fresh
    /// directory and returns the node's data; the entry appears under its
    /// key only once whole.
    pub fn put(
        &self,
        kind: &str,
        key: &str,
        build: impl FnOnce(&Path) -> Result<serde_json::Value>,
    ) -> Result<Entry> {
        self.put_walking(kind, key, Walk::Top, build)
    }

    /// [`Store::put`] for an entry whose output is a tree: every file below
    /// the entry's folder is recorded (by its `/`-separated path) and verified.
    pub fn put_tree(
        &self,
        kind: &str,
        key: &str,
        build: impl FnOnce(&Path) -> Result<serde_json::Value>,
    ) -> Result<Entry> {
        self.put_walking(kind, key, Walk::Tree, build)
    }

    fn put_walking(
        &self,
        kind: &str,
        key: &str,
        walk: Walk,
        build: impl FnOnce(&Path) -> Result<serde_json::Value>,
    ) -> Result<Entry> {
        let dest = self.entry_dir(kind, key);
        fs::create_dir_all(self.kind_dir(kind))
            .with_context(|| format!("creating {}", self.kind_dir(kind).display()))?;
        let temp = TempDir::beside(&dest)?;
        let data = build(temp.path())?;
        let mut files = Vec::new();
        let mut pending = vec![(temp.path().to_path_buf(), String::new())];
        while let Some((dir, prefix)) = pending.pop() {
            for item in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                let item = item?;
                let name = format!("{prefix}{}", item.file_name().to_string_lossy());
                let file_type = item.file_type()?;
                if file_type.is_dir() && walk == Walk::Tree {
                    pending.push((item.path(), format!("{name}/")));
                }
                if !file_type.is_file() {
                    continue;
                }
                let digest = file_sha256(&item.path())?;
                // Renaming the directory into place keeps each file's inode and
                // mtime, so the stamp taken here holds there.
                let metadata = item.metadata()?;
                files.push(OutputFile {
                    name,
                    sha256: digest.hex,
                    base64sha256: digest.base64,
                    bytes: metadata.len(),
                    stamp: stamp(&metadata),
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let body = Body { files, data };
        write_meta(temp.path(), &body)?;
        temp.persist(&dest)?;
        Ok(Entry::new(dest, body, false))
    }

    /// Rewrites an entry's stamps after its files were verified by hash (a
    /// copied checkout): the next lookup is cheap again.
    pub fn restamp(&self, entry: &Entry) -> Result<()> {
        let mut files = entry.files.clone();
        for file in &mut files {
            file.stamp = stamp(&fs::metadata(entry.dir.join(&file.name))?);
        }
        if files == entry.files {
            return Ok(());
        }
        write_meta(
            &entry.dir,
            &Body {
                files,
                data: entry.data.clone(),
            },
        )
    }

    /// Removes a damaged entry.
    pub fn discard(&self, kind: &str, key: &str) -> Result<()> {
        let dir = self.entry_dir(kind, key);
        let aside = crate::ground::atomic::temp_sibling(&dir);
        fs::rename(&dir, &aside).with_context(|| format!("moving aside {}", dir.display()))?;
        fs::remove_dir_all(&aside).with_context(|| format!("removing {}", aside.display()))
    }
}

/// Seals and writes an entry's meta.json: the body's sha256 on the first
/// line, the body below it.
fn write_meta(dir: &Path, body: &Body) -> Result<()> {
    let body = serde_json::to_vec_pretty(body)?;
    let mut bytes = bytes_sha256(&body).into_bytes();
    bytes.push(b'\n');
    bytes.extend(body);
    write_atomic(&dir.join(META), &bytes)
}

pub fn stamp(metadata: &fs::Metadata) -> String {
    format!(
        "{}:{}.{}:{}",
        metadata.len(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ino()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_verified_and_damage_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path());
        assert!(matches!(store.lookup("k", "abc"), Lookup::Miss));
        let entry = store
            .put("k", "abc", |dir| {
                fs::write(dir.join("out.zip"), b"0123456789")?;
                Ok(serde_json::json!({"n": 1}))
            })
            .unwrap();
        let Lookup::Hit(hit) = store.lookup("k", "abc") else {
            panic!("a fresh entry is a hit")
        };
        assert_eq!(hit.digest(), entry.digest());
        assert_eq!(hit.data["n"], 1);

        fs::write(entry.dir.join("out.zip"), b"01234").unwrap();
        assert!(matches!(store.lookup("k", "abc"), Lookup::Damaged(why) if why.contains("bytes")));
        fs::write(entry.dir.join("out.zip"), b"abcdefghij").unwrap();
        assert!(matches!(store.lookup("k", "abc"), Lookup::Damaged(why) if why.contains("sha256")));
        fs::write(entry.dir.join("out.zip"), b"0123456789").unwrap();
        let Lookup::Hit(hit) = store.lookup("k", "abc") else {
            panic!("same bytes again: a hit, verified by hash")
        };
        store.restamp(&hit).unwrap();

        let meta = entry.dir.join(META);
        let text = fs::read_to_string(&meta).unwrap().replace("\"n\": 1", "\"n\": 2");
        assert!(text.contains("\"n\": 2"), "{text}");
        fs::write(&meta, text).unwrap();
        assert!(matches!(store.lookup("k", "abc"), Lookup::Damaged(why) if why.contains("changed")));
        fs::write(&meta, "{").unwrap();
        assert!(matches!(store.lookup("k", "abc"), Lookup::Damaged(_)));
        store.discard("k", "abc").unwrap();
        assert!(matches!(store.lookup("k", "abc"), Lookup::Miss));
    }
}
