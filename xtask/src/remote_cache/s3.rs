//! The remote cache's S3 side (the `remote-cache` feature): requests
//! presigned with SigV4 by `rusty-s3`, sent by `curl` with bounded times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};

use super::{Mode, Settings};
use crate::digest::file_sha256;
use crate::error::UsageError;
use crate::progress::Printer;
use crate::store::{Entry, Store};

/// How long a connection may take before the remote counts as not answering.
const CONNECT_TIMEOUT_S: u64 = 5;
/// Every request may take this long, plus a second per 512 KiB it carries.
const BASE_TIMEOUT_S: u64 = 20;
/// How long a presigned URL stays valid: longer than any one request.
const URL_VALIDITY: Duration = Duration::from_secs(3600);
const META: &str = "meta.json";
const FORMAT: u32 = 1;

/// What the remote holds of one entry: its files and the node's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RemoteMeta {
    format: u32,
    files: Vec<RemoteFile>,
    data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RemoteFile {
    name: String,
    sha256: String,
    bytes: u64,
}

/// The outcome of one request that reached the remote.
enum Answer {
    Ok,
    NotFound,
}

/// A request that did not get an answer the cache can use.
struct Unavailable(String);

pub struct RemoteCache {
    settings: Settings,
    bucket: Bucket,
    credentials: Option<Credentials>,
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
        RemoteCache::new(settings.clone()).map(Some)
    }

    pub fn new(settings: Settings) -> Result<RemoteCache> {
        let aws = AwsEnv::read();
        let (endpoint, style) = match aws.endpoint {
            Some(endpoint) => (endpoint, UrlStyle::Path),
            None => (
                format!("https://s3.{}.amazonaws.com", aws.region),
                if settings.bucket.contains('.') {
                    UrlStyle::Path
                } else {
                    UrlStyle::VirtualHost
                },
            ),
        };
        let endpoint_url = url::Url::parse(&endpoint)
            .map_err(|err| UsageError::new(format!("the S3 endpoint `{endpoint}` is not a URL: {err}")))?;
        let bucket = Bucket::new(endpoint_url, style, settings.bucket.clone(), aws.region.clone())
            .map_err(|err| UsageError::new(format!("remote cache {}: {err}", settings.url())))?;
        Ok(RemoteCache {
            settings,
            bucket,
            credentials: aws.credentials,
            down: AtomicBool::new(false),
            announced: AtomicBool::new(false),
        })
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

    fn get_url(&self, kind: &str, key: &str, name: &str) -> String {
        let object = self.object(kind, key, name);
        let action = self.bucket.get_object(self.credentials.as_ref(), &object);
        action.sign(URL_VALIDITY).to_string()
    }

    fn put_url(&self, kind: &str, key: &str, name: &str) -> String {
        let object = self.object(kind, key, name);
        let action = self.bucket.put_object(self.credentials.as_ref(), &object);
        action.sign(URL_VALIDITY).to_string()
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Marks the remote as not answering; the first to do so says so.
    fn give_up(&self, printer: &Printer, why: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            printer.warn(&format!(
                "remote cache {} does not answer ({why}): building locally, without it for the rest of this run",
                self.url()
            ));
        }
    }

    /// Fetches the entry of `kind`/`key` into the local store, verified
    /// against the sha256 its meta records. `None`: not there, not usable
    /// (said with a warning) or the remote does not answer; build it.
    pub fn fetch(&self, store: &Store, kind: &str, key: &str, id: &str, printer: &Printer) -> Option<Entry> {
        if self.is_down() {
            return None;
        }
        let temp = match crate::atomic::TempDir::beside(&store.entry_dir(kind, key)) {
            Ok(temp) => temp,
            Err(_) => {
                let _ = std::fs::create_dir_all(store.kind_dir(kind));
                crate::atomic::TempDir::beside(&store.entry_dir(kind, key)).ok()?
            }
        };
        let meta_path = temp.path().join(META);
        match curl_get(&self.get_url(kind, key, META), &meta_path, 0) {
            Err(Unavailable(why)) => {
                self.give_up(printer, &why);
                return None;
            }
            Ok(Answer::NotFound) => return None,
            Ok(Answer::Ok) => {}
        }
        let reject = |why: String| {
            printer.warn(&format!(
                "{id}: discarding the remote cache entry {}: {why}; building it",
                self.object(kind, key, "")
            ));
            None
        };
        let meta: RemoteMeta = match std::fs::read(&meta_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        {
            Some(meta) => meta,
            None => return reject(format!("{META} is not valid")),
        };
        if meta.format != FORMAT || meta.files.is_empty() {
            return reject(format!("{META} is of another format"));
        }
        let downloads = temp.path().join("files");
        if std::fs::create_dir(&downloads).is_err() {
            return None;
        }
        for file in &meta.files {
            if file.name.is_empty()
                || file.name.contains('/')
                || file.name == META
                || file.name.starts_with('.')
            {
                return reject(format!("{META} names a file `{}`", file.name));
            }
            let path = downloads.join(&file.name);
            match curl_get(&self.get_url(kind, key, &file.name), &path, file.bytes) {
                Err(Unavailable(why)) => {
                    self.give_up(printer, &why);
                    return None;
                }
                Ok(Answer::NotFound) => return reject(format!("{} is missing", file.name)),
                Ok(Answer::Ok) => {}
            }
            match file_sha256(&path) {
                Ok(digest) if digest.hex == file.sha256 => {}
                _ => return reject(format!("{} does not match its recorded sha256", file.name)),
            }
        }
        let files: Vec<PathBuf> = meta.files.iter().map(|file| downloads.join(&file.name)).collect();
        let data = meta.data;
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
        let mut uploads: Vec<(String, PathBuf, u64)> = entry
            .files
            .iter()
            .map(|file| (file.name.clone(), entry.dir.join(&file.name), file.bytes))
            .collect();
        let temp = match crate::atomic::TempDir::beside(&entry.dir) {
            Ok(temp) => temp,
            Err(_) => return,
        };
        let meta_path = temp.path().join(META);
        let bytes = serde_json::to_vec_pretty(&meta).expect("a meta serializes");
        if std::fs::write(&meta_path, &bytes).is_err() {
            return;
        }
        uploads.push((META.to_string(), meta_path, bytes.len() as u64));
        for (name, path, size) in uploads {
            let url = self.put_url(kind, key, &name);
            if let Err(Unavailable(why)) = curl_put(&url, &path, size) {
                self.give_up(printer, &why);
                return;
            }
        }
    }
}

/// The per-request bound: a base, and a second per 512 KiB carried.
fn max_time(bytes: u64) -> String {
    (BASE_TIMEOUT_S + bytes / (512 * 1024)).to_string()
}

fn curl() -> Command {
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--globoff"])
        .args(["--connect-timeout", &CONNECT_TIMEOUT_S.to_string()])
        // A stalled transfer (under 1 KiB/s for 10 s) ends early.
        .args(["--speed-limit", "1024", "--speed-time", "10"])
        .args(["--write-out", "%{http_code}"])
        .stdin(Stdio::null());
    command
}

/// Runs a curl command; the HTTP status, or why there was none.
fn status_of(mut command: Command) -> Result<u16, Unavailable> {
    let output = command
        .output()
        .map_err(|err| Unavailable(format!("cannot run curl: {err}")))?;
    let code = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse::<u16>()
        .unwrap_or(0);
    if !output.status.success() || code == 0 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.lines().last().unwrap_or("no answer").trim().to_string();
        return Err(Unavailable(if why.is_empty() {
            format!("curl exited with {}", output.status)
        } else {
            why
        }));
    }
    Ok(code)
}

fn curl_get(url: &str, dest: &Path, bytes: u64) -> Result<Answer, Unavailable> {
    let mut command = curl();
    command
        .args(["--max-time", &max_time(bytes), "--output"])
        .arg(dest)
        .arg(url);
    match status_of(command)? {
        200 => Ok(Answer::Ok),
        // S3 answers 403 for a missing key to whoever may not list the bucket.
        404 | 403 if !dest.exists() || std::fs::read(dest).is_ok_and(|body| is_missing_key(&body)) => {
            let _ = std::fs::remove_file(dest);
            Ok(Answer::NotFound)
        }
        code => Err(Unavailable(format!("GET answered HTTP {code}"))),
    }
}

/// Whether an S3 error body says the key does not exist.
fn is_missing_key(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("NoSuchKey") || text.contains("Not Found") || text.trim().is_empty()
}

fn curl_put(url: &str, path: &Path, bytes: u64) -> Result<(), Unavailable> {
    let mut command = curl();
    command
        .args(["--max-time", &max_time(bytes), "--output", "/dev/null"])
        // S3 does not need the 100-continue round trip.
        .args(["--header", "Expect:", "--upload-file"])
        .arg(path)
        .arg(url);
    match status_of(command)? {
        200 | 201 | 204 => Ok(()),
        code => Err(Unavailable(format!("PUT answered HTTP {code}"))),
    }
}

/// The standard AWS environment: endpoint, region and static credentials.
struct AwsEnv {
    endpoint: Option<String>,
    region: String,
    credentials: Option<Credentials>,
}

impl AwsEnv {
    fn read() -> AwsEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let home = var("HOME").map(PathBuf::from);
        let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
        let config_file = var("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/config")));
        let credentials_file = var("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws/credentials")));
        let config_section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        let config = config_file
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| ini_section(&text, &config_section))
            .unwrap_or_default();
        let from_file = credentials_file
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| ini_section(&text, &profile))
            .unwrap_or_default();
        let credentials = Credentials::from_env().or_else(|| {
            // The credentials file first, then static keys in the config file.
            [&from_file, &config].into_iter().find_map(|section| {
                let key = section.get("aws_access_key_id")?;
                let secret = section.get("aws_secret_access_key")?;
                Some(match section.get("aws_session_token") {
                    Some(token) => Credentials::new_with_token(key, secret, token),
                    None => Credentials::new(key, secret),
                })
            })
        });
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| config.get("region").cloned())
            .unwrap_or_else(|| crate::facts::S3_DEFAULT_REGION.to_string());
        let endpoint = var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| config.get("endpoint_url").cloned());
        AwsEnv {
            endpoint,
            region,
            credentials,
        }
    }
}

/// The `key = value` pairs of `[section]` in an INI file as AWS writes them.
fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_lowercase(), value.trim().to_string());
            }
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read() {
        let text = "[default]\nregion = eu-west-1\n\n[profile ci]\naws_access_key_id = AK\n";
        assert_eq!(ini_section(text, "default")["region"], "eu-west-1");
        assert_eq!(ini_section(text, "profile ci")["aws_access_key_id"], "AK");
        assert!(ini_section(text, "ci").is_empty());
    }
}
