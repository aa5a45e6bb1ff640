//! The remote cache's S3 requests: signed with SigV4 (`sigv4.rs`) over the
//! body's SHA-256, sent by `curl` with the URL and headers on its standard
//! input (`store/curl.rs`: never on a command line, where `ps` shows them to
//! every user), every response bounded by our own size and time limits.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;

use super::aws::{AwsEnv, Credentials};
use super::settings::Settings;
use super::sigv4::{self, Signer, EMPTY_SHA256};
use crate::ground::error::UsageError;
use crate::store::curl::{self, max_time, quoted, ERROR_BODY_LIMIT};

/// What a request that got no usable answer ran into.
#[derive(Debug)]
pub enum Failure {
    /// No answer, or one the cache cannot use: the remote counts as down.
    Unavailable(String),
    /// HTTP 403 with an S3 error code other than a missing key.
    Refused(String),
    /// The answer was longer than our limit for it.
    TooLarge,
}

impl From<curl::Failure> for Failure {
    fn from(failure: curl::Failure) -> Failure {
        match failure {
            curl::Failure::Unavailable(why) => Failure::Unavailable(why),
            curl::Failure::TooLarge => Failure::TooLarge,
        }
    }
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
        let status = curl::run(&config, &mut file, limit, max_time(limit))?;
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
        match curl::run(&config, &mut body, ERROR_BODY_LIMIT, max_time(bytes))? {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Userinfo is refused (spelt with `§` here, so no credential-shaped URL
        // stands in the source).
        assert_eq!(parse_endpoint(&"https://user:pw§x".replace('§', "@")), None);
        assert_eq!(parse_endpoint("https://x/a b"), None);
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
