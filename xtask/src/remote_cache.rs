//! The remote cache: dependency layers shared between machines through an
//! S3 bucket (`remote_cache = "s3://bucket/prefix"`). An entry is the
//! local store's entry of a dependency layer, under the same key:
//! `<prefix>/<kind>/<key>/layer.zip` and `<prefix>/<kind>/<key>/meta.json`
//! (every file's sha256 and size, and the node's data). Readers look up the
//! meta first and verify every file against it; writers upload the files
//! first and the meta last, so an entry is visible only once whole.
//!
//! Requests are presigned with SigV4 by `rusty-s3` and sent by `curl`, each
//! bounded in time (`s3.rs`, compiled with the `remote-cache` feature only:
//! its dependencies would more than double the tool's first compile). A
//! remote that does not answer never fails a build: the first failure says
//! so once, and the run stops asking it.

use crate::error::UsageError;
#[cfg(not(feature = "remote-cache"))]
use crate::progress::Printer;
#[cfg(not(feature = "remote-cache"))]
use crate::store::{Entry, Store};

#[cfg(feature = "remote-cache")]
mod s3;
#[cfg(feature = "remote-cache")]
pub use s3::RemoteCache;

pub const ENV_URL: &str = "XTASK_REMOTE_CACHE";
pub const ENV_MODE: &str = "XTASK_REMOTE_CACHE_MODE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    ReadOnly,
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "read-write" => Some(Mode::ReadWrite),
            "read-only" => Some(Mode::ReadOnly),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::ReadWrite => "read-write",
            Mode::ReadOnly => "read-only",
        }
    }
}

/// `remote_cache` and `remote_cache_mode`, as configured (or set by the
/// environment, which wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub bucket: String,
    /// Without slashes at either end; may be empty.
    pub prefix: String,
    pub mode: Mode,
}

impl Settings {
    /// Parses `s3://bucket/prefix`; `what` names the key or variable.
    pub fn parse(what: &str, url: &str, mode: Mode) -> Result<Settings, String> {
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(format!(
                "{what}: `{url}` is not an S3 URL (use s3://bucket/prefix)"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.');
        if !valid_bucket {
            return Err(format!(
                "{what}: `{bucket}` is not a valid bucket name (3 to 63 lowercase letters, digits, `-` and `.`)"
            ));
        }
        Ok(Settings {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            mode,
        })
    }

    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The settings with the environment's over the configured ones:
/// `XTASK_REMOTE_CACHE` replaces the URL, `XTASK_REMOTE_CACHE_MODE` the mode.
pub fn with_env(configured: Option<Settings>) -> Result<Option<Settings>, UsageError> {
    let var = |name: &str| std::env::var(name).ok().map(|value| value.trim().to_string());
    let mode = match var(ENV_MODE).filter(|mode| !mode.is_empty()) {
        None => None,
        Some(name) => Some(Mode::parse(&name).ok_or_else(|| {
            UsageError::new(format!(
                "{ENV_MODE}: unknown mode `{name}` (use read-write or read-only)"
            ))
        })?),
    };
    let configured_mode = configured.as_ref().map(|settings| settings.mode);
    let settings = match var(ENV_URL).filter(|url| !url.is_empty()) {
        Some(url) => Some(Settings::parse(ENV_URL, &url, Mode::ReadWrite).map_err(UsageError::new)?),
        None => configured,
    };
    Ok(settings.map(|mut settings| {
        settings.mode = mode.or(configured_mode).unwrap_or(Mode::ReadWrite);
        settings
    }))
}

/// Built without the `remote-cache` feature: a configured remote cache is
/// said to be unused, once, and every layer is built locally.
#[cfg(not(feature = "remote-cache"))]
pub struct RemoteCache(std::convert::Infallible);

#[cfg(not(feature = "remote-cache"))]
impl RemoteCache {
    pub fn open(settings: &Settings, printer: &Printer) -> anyhow::Result<Option<RemoteCache>> {
        printer.warn(&format!(
            "remote cache {} ({}) is configured, but this xtask was built without the `remote-cache` \
             feature: building locally (export CARGO_ALIAS_XTASK=\"run --package xtask --features remote-cache --\")",
            settings.url(),
            settings.mode.name()
        ));
        Ok(None)
    }

    pub fn announce(&self) -> Option<String> {
        match self.0 {}
    }

    pub fn fetch(&self, _: &Store, _: &str, _: &str, _: &str, _: &Printer) -> Option<Entry> {
        match self.0 {}
    }

    pub fn upload(&self, _: &str, _: &str, _: &Entry, _: &Printer) {
        match self.0 {}
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
