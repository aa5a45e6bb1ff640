//! The remote cache's S3 requests: signed with SigV4 (`sigv4.rs`) over the
//! body's SHA-256, sent by `curl` with the URL and headers on its standard
//! input (never on a command line, where `ps` shows them to every user),
//! every response bounded by our own size and time limits.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::Result;

use super::settings::Settings;
use super::sigv4::{self, Signer, EMPTY_SHA256};
use crate::error::UsageError;

/// How long a connection may take before the remote counts as not answering.
const CONNECT_TIMEOUT_S: u64 = 5;
/// Every request may take this long, plus a second per 512 KiB our own
/// limit for it allows (never what the remote says it will send).
const BASE_TIMEOUT_S: u64 = 20;
/// A transfer slower than this many bytes a second for `STALL_S` ends.
const STALL_BYTES_PER_S: u64 = 1024;
const STALL_S: u64 = 10;
/// The most of an error answer that is read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Static AWS credentials and where they came from (for messages: the
/// secret and the token never appear in one).
pub struct Credentials {
    key_id: String,
    secret: String,
    token: Option<String>,
    /// `AWS_ACCESS_KEY_ID from the environment`, `profile ci of …/credentials`.
    source: String,
}

impl Credentials {
    /// `AKIA…MPLE`: enough to tell keys apart, too little to use.
    fn short_key_id(&self) -> String {
        let chars: Vec<char> = self.key_id.chars().collect();
        if chars.len() >= 12 {
            let (head, tail): (String, String) = (
                chars[..4].iter().collect(),
                chars[chars.len() - 4..].iter().collect(),
            );
            format!("{head}…{tail}")
        } else {
            format!("{}…", chars.iter().take(2).collect::<String>())
        }
    }
}

/// What a request that got no usable answer ran into.
pub enum Failure {
    /// No answer, or one the cache cannot use: the remote counts as down.
    Unavailable(String),
    /// HTTP 403 with an S3 error code other than a missing key.
    Refused(String),
    /// The answer was longer than our limit for it.
    TooLarge,
}

/// The outcome of a GET that reached the remote.
pub enum Answer {
    Ok,
    NotFound,
}

pub struct S3 {
    settings: Settings,
    scheme: String,
    /// `host[:port]`, as signed and sent.
    host: String,
    /// The path to the bucket: `/bucket` path-style, empty virtual-hosted,
    /// after any path of a custom endpoint.
    bucket_path: String,
    region: String,
    credentials: Option<Credentials>,
}

impl S3 {
    /// The bucket of `settings`, with the endpoint, region and credentials
    /// of the standard AWS environment and files.
    pub fn new(settings: &Settings) -> Result<S3> {
        let aws = AwsEnv::read();
        let region_ok = !aws.region.is_empty()
            && aws
                .region
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-');
        if !region_ok {
            return Err(UsageError::new(format!(
                "the AWS region `{}` is not a region name (set AWS_REGION, e.g. us-east-1)",
                aws.region
            ))
            .into());
        }
        let (scheme, host, bucket_path) = match &aws.endpoint {
            Some(endpoint) => {
                let (scheme, host, path) = parse_endpoint(endpoint).ok_or_else(|| {
                    UsageError::new(format!(
                        "the S3 endpoint `{endpoint}` is not an http(s) URL (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or endpoint_url)"
                    ))
                })?;
                (scheme, host, format!("{path}/{}", settings.bucket))
            }
            // A dotted bucket's name would not match AWS's certificate.
            None if settings.bucket.contains('.') => (
                "https".to_string(),
                format!("s3.{}.amazonaws.com", aws.region),
                format!("/{}", settings.bucket),
            ),
            None => (
                "https".to_string(),
                format!("{}.s3.{}.amazonaws.com", settings.bucket, aws.region),
                String::new(),
            ),
        };
        Ok(S3 {
            settings: settings.clone(),
            scheme,
            host,
            bucket_path,
            region: aws.region,
            credentials: aws.credentials,
        })
    }

    /// Which credentials sign the requests, for messages.
    pub fn credentials_used(&self) -> String {
        match &self.credentials {
            Some(credentials) => format!(
                "the access key {} ({})",
                credentials.short_key_id(),
                credentials.source
            ),
            None => {
                "no credentials (anonymous requests: no AWS_ACCESS_KEY_ID, no profile with keys)".to_string()
            }
        }
    }

    /// GETs `object` into `dest`, at most `limit` bytes of it.
    pub fn get(&self, object: &str, dest: &Path, limit: u64) -> Result<Answer, Failure> {
        let config = self.curl_config("GET", object, EMPTY_SHA256, None);
        let mut file = std::fs::File::create(dest)
            .map_err(|err| Failure::Unavailable(format!("cannot write {}: {err}", dest.display())))?;
        let status = run_curl(&config, &mut file, limit, max_time(limit))?;
        drop(file);
        match status {
            200 => Ok(Answer::Ok),
            404 => {
                let _ = std::fs::remove_file(dest);
                Ok(Answer::NotFound)
            }
            code => {
                let body = read_prefix(dest, ERROR_BODY_LIMIT);
                let _ = std::fs::remove_file(dest);
                // S3 answers 403 for a missing key to whoever may not list the bucket.
                if code == 403 && (body.is_empty() || error_code(&body).as_deref() == Some("NoSuchKey")) {
                    return Ok(Answer::NotFound);
                }
                Err(self.failure("GET", code, &body))
            }
        }
    }

    /// PUTs the file `path`, whose SHA-256 (hex) is `sha256`.
    pub fn put(&self, object: &str, path: &Path, sha256: &str) -> Result<(), Failure> {
        let bytes = std::fs::metadata(path)
            .map_err(|err| Failure::Unavailable(format!("cannot read {}: {err}", path.display())))?
            .len();
        let config = self.curl_config("PUT", object, sha256, Some(path));
        let mut body = Vec::new();
        match run_curl(&config, &mut body, ERROR_BODY_LIMIT, max_time(bytes))? {
            200 | 201 | 204 => Ok(()),
            code => Err(self.failure("PUT", code, &String::from_utf8_lossy(&body))),
        }
    }

    fn failure(&self, method: &str, code: u16, body: &str) -> Failure {
        let s3_code = error_code(body)
            .map(|code| format!(" {code}"))
            .unwrap_or_default();
        if code != 403 {
            return Failure::Unavailable(format!("{method} answered HTTP {code}{s3_code}"));
        }
        let may = if method == "GET" {
            "s3:GetObject and s3:ListBucket (without it a missing entry answers 403 too)"
        } else {
            "s3:PutObject (or set XTASK_REMOTE_CACHE_MODE=read-only)"
        };
        Failure::Refused(format!(
            "{method} answered HTTP 403{s3_code} to requests signed with {}: check that they may {may} on {}/*, \
             that a session token has not expired, and that the bucket is in {}",
            self.credentials_used(),
            self.settings.url(),
            self.region
        ))
    }

    /// curl's configuration for one signed request: read from its standard
    /// input, so that neither the URL nor a header is on its command line.
    fn curl_config(&self, method: &str, object: &str, payload_sha256: &str, upload: Option<&Path>) -> String {
        let path = format!("{}/{}", self.bucket_path, sigv4::uri_encode(object, true));
        let mut headers = BTreeMap::from([
            ("host".to_string(), self.host.clone()),
            ("x-amz-content-sha256".to_string(), payload_sha256.to_string()),
            ("x-amz-date".to_string(), sigv4::amz_date(SystemTime::now())),
        ]);
        let mut lines = vec![format!(
            "url = {}",
            quoted(&format!("{}://{}{path}", self.scheme, self.host))
        )];
        if let Some(credentials) = &self.credentials {
            if let Some(token) = &credentials.token {
                headers.insert("x-amz-security-token".to_string(), token.clone());
            }
            let signer = Signer {
                key_id: &credentials.key_id,
                secret: &credentials.secret,
                region: &self.region,
                service: "s3",
            };
            let authorization = signer.authorization(&sigv4::Request {
                method,
                path: &path,
                query: "",
                headers: &headers,
                payload_sha256,
            });
            headers.insert("authorization".to_string(), authorization);
        }
        for (name, value) in &headers {
            lines.push(format!("header = {}", quoted(&format!("{name}: {value}"))));
        }
        match upload {
            Some(file) => lines.push(format!("upload-file = {}", quoted(&file.to_string_lossy()))),
            None => lines.push(format!("request = {method}")),
        }
        lines.join("\n") + "\n"
    }
}

/// A value of curl's configuration file, in double quotes.
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// `scheme`, `host[:port]` and a path without a trailing slash, of an
/// http(s) URL without user, query or fragment.
fn parse_endpoint(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, ""), |(host, path)| (host, path));
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-.:[]_".contains(ch));
    let path_ok = path
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "-._~/".contains(ch));
    if !host_ok || !path_ok {
        return None;
    }
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    Some((scheme, host.to_string(), path))
}

/// The time bound of a request that may carry `bytes`.
fn max_time(bytes: u64) -> u64 {
    BASE_TIMEOUT_S + bytes / (512 * 1024)
}

/// Runs curl with `config` on its standard input, copying the answer's
/// body into `sink` up to `limit` bytes (more ends the transfer): the HTTP
/// status, or why there was none.
fn run_curl(config: &str, sink: &mut dyn Write, limit: u64, max_time_s: u64) -> Result<u16, Failure> {
    let mut child = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--globoff",
            "--path-as-is",
            "--config",
            "-",
        ])
        .args(["--connect-timeout", &CONNECT_TIMEOUT_S.to_string()])
        .args(["--speed-limit", &STALL_BYTES_PER_S.to_string()])
        .args(["--speed-time", &STALL_S.to_string()])
        .args(["--max-time", &max_time_s.to_string()])
        .args(["--max-filesize", &limit.to_string()])
        .args([
            "--output",
            "-",
            "--write-out",
            "%{stderr}\nhttp_code=%{http_code}\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Failure::Unavailable(format!("cannot run curl: {err}")))?;
    // curl reads its whole configuration before it connects.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(config.as_bytes()));
    let mut stderr_pipe = child.stderr.take();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.take(ERROR_BODY_LIMIT).read_to_string(&mut text);
        }
        text
    });
    let mut too_large = false;
    if let Some(stdout) = child.stdout.take() {
        let mut bounded = stdout.take(limit + 1);
        match std::io::copy(&mut bounded, sink) {
            Ok(copied) if copied > limit => too_large = true,
            Ok(_) => {}
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Unavailable(format!("writing the answer: {err}")));
            }
        }
    }
    if too_large {
        let _ = child.kill();
    }
    let status = child.wait();
    let stderr = stderr.join().unwrap_or_default();
    if too_large {
        return Err(Failure::TooLarge);
    }
    if let Some(Err(err)) = written {
        return Err(Failure::Unavailable(format!("cannot talk to curl: {err}")));
    }
    let code = stderr
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("http_code="))
        .and_then(|code| code.trim().parse::<u16>().ok())
        .unwrap_or(0);
    let exited = status.map(|status| status.code());
    // 63: curl's own "maximum file size exceeded".
    if exited.as_ref().is_ok_and(|code| *code == Some(63)) {
        return Err(Failure::TooLarge);
    }
    if code == 0 || !exited.as_ref().is_ok_and(|code| *code == Some(0)) {
        let why = stderr
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty() && !line.starts_with("http_code="))
            .map(str::to_string)
            .unwrap_or_else(|| format!("curl exited with {exited:?}"));
        return Err(Failure::Unavailable(why));
    }
    Ok(code)
}

fn read_prefix(path: &Path, limit: u64) -> String {
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        let mut bytes = Vec::new();
        let _ = file.take(limit).read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

/// The `<Code>` of an S3 error answer.
fn error_code(body: &str) -> Option<String> {
    let (_, rest) = body.split_once("<Code>")?;
    let (code, _) = rest.split_once("</Code>")?;
    let code = code.trim();
    (!code.is_empty() && code.len() <= 64 && code.chars().all(|ch| ch.is_ascii_alphanumeric()))
        .then(|| code.to_string())
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
        let read_section = |file: &Option<PathBuf>, section: &str| {
            file.as_ref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|text| ini_section(&text, section))
                .unwrap_or_default()
        };
        let config = read_section(&config_file, &config_section);
        let from_file = read_section(&credentials_file, &profile);
        let from_env = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key_id), Some(secret)) => Some(Credentials {
                key_id,
                secret,
                token: var("AWS_SESSION_TOKEN"),
                source: "AWS_ACCESS_KEY_ID from the environment".to_string(),
            }),
            _ => None,
        };
        let credentials = from_env.or_else(|| {
            // The credentials file first, then static keys in the config file.
            [(&from_file, &credentials_file), (&config, &config_file)]
                .into_iter()
                .find_map(|(section, file)| {
                    Some(Credentials {
                        key_id: section.get("aws_access_key_id")?.clone(),
                        secret: section.get("aws_secret_access_key")?.clone(),
                        token: section.get("aws_session_token").cloned(),
                        source: format!(
                            "profile `{profile}` of {}",
                            file.as_ref()
                                .map_or("?".into(), |path| path.display().to_string())
                        ),
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
            region: region.trim().to_string(),
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

    #[test]
    fn endpoints_and_config_values_are_read_strictly() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:9000/"),
            Some(("http".into(), "127.0.0.1:9000".into(), String::new()))
        );
        assert_eq!(
            parse_endpoint("https://minio.example/s3"),
            Some(("https".into(), "minio.example".into(), "/s3".into()))
        );
        assert_eq!(parse_endpoint("ftp://x"), None);
        assert_eq!(parse_endpoint("https://user:pw@x"), None);
        assert_eq!(parse_endpoint("https://x/a b"), None);
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn time_limits_follow_our_own_bounds() {
        // The layer ZIP's bound gives a finite time, whatever a meta claims.
        assert_eq!(max_time(crate::facts::MAX_UNZIPPED_BYTES), BASE_TIMEOUT_S + 500);
        assert_eq!(max_time(0), BASE_TIMEOUT_S);
    }

    #[test]
    fn key_ids_are_shortened_and_secrets_never_shown() {
        let credentials = Credentials {
            key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            token: Some("TOKEN".into()),
            source: "AWS_ACCESS_KEY_ID from the environment".into(),
        };
        assert_eq!(credentials.short_key_id(), "AKIA…MPLE");
        let s3 = S3 {
            settings: Settings::parse("k", "s3://layers/ci", super::super::Mode::ReadWrite).unwrap(),
            scheme: "http".into(),
            host: "127.0.0.1:9".into(),
            bucket_path: "/layers".into(),
            region: "us-east-1".into(),
            credentials: Some(credentials),
        };
        let Failure::Refused(message) = s3.failure("GET", 403, "<Error><Code>AccessDenied</Code></Error>")
        else {
            panic!("a 403 is a refusal")
        };
        assert!(
            message.contains("AccessDenied") && message.contains("AKIA…MPLE"),
            "{message}"
        );
        assert!(
            message.contains("AWS_ACCESS_KEY_ID from the environment"),
            "{message}"
        );
        assert!(
            !message.contains("EXAMPLEKEY") && !message.contains("TOKEN"),
            "{message}"
        );
        let config = s3.curl_config(
            "PUT",
            "ci/profile/k/layer.zip",
            EMPTY_SHA256,
            Some(Path::new("/t/l.zip")),
        );
        assert!(
            config.contains("url = \"http://127.0.0.1:9/layers/ci/profile/k/layer.zip\""),
            "{config}"
        );
        assert!(
            config.contains(&format!("header = \"x-amz-content-sha256: {EMPTY_SHA256}\"")),
            "{config}"
        );
        assert!(
            config.contains("header = \"x-amz-security-token: TOKEN\""),
            "{config}"
        );
        assert!(
            config.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            "{config}"
        );
        assert!(
            !config.contains("UNSIGNED-PAYLOAD") && !config.contains("X-Amz-Expires"),
            "{config}"
        );
    }
}
