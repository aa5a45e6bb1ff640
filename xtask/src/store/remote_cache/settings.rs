//! Where the remote cache is and whether a run may write to it:
//! `remote_cache` and `remote_cache_mode` as configured, or as the
//! environment sets them.

use crate::ground::error::UsageError;

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
