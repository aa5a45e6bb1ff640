//! Who the registry client is: credentials found once per registry, in
//! this order: for Amazon ECR, a password from ECR's `GetAuthorizationToken`
//! asked for with the AWS credentials the remote cache uses; otherwise
//! `XTASK_REGISTRY_TOKEN` (Bearer) or `XTASK_REGISTRY_USERNAME` with
//! `XTASK_REGISTRY_PASSWORD` (Basic); else none. A registry that answers
//! 401 with a `Bearer` challenge (RFC 6750 §3, as the distribution
//! project's token specification uses it: `realm`, `service`, `scope`)
//! gets a token from its realm. No credential is ever on a command line,
//! on disk or in a message: they go to curl in its configuration on stdin.
//!
//! ECR: https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_GetAuthorizationToken.html

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::{bail, Result};

use super::Reference;
use crate::ground::digest::{base64, base64_decode, bytes_sha256};
use crate::ground::error::EnvironmentError;
use crate::store::curl::quoted;
use crate::store::remote_cache::aws::{AwsEnv, Credentials};
use crate::store::remote_cache::sigv4::{self, Signer};

pub const ENV_TOKEN: &str = "XTASK_REGISTRY_TOKEN";
pub const ENV_USERNAME: &str = "XTASK_REGISTRY_USERNAME";
pub const ENV_PASSWORD: &str = "XTASK_REGISTRY_PASSWORD";
/// Where ECR's API is, for tests (`http://127.0.0.1:PORT`).
pub const ENV_ECR_ENDPOINT: &str = "XTASK_ECR_ENDPOINT";

/// The credentials a registry is spoken to with.
pub enum Auth {
    Anonymous,
    /// `Authorization: Basic <value>`; `value` is base64 of `user:password`.
    Basic(String),
    /// `Authorization: Bearer <token>`, a token given as it is.
    Bearer(String),
    /// ECR's password for `AWS` (Basic), and the AWS credentials it came from.
    Ecr {
        basic: String,
        credentials: String,
    },
}

impl Auth {
    /// The `Authorization` header's value sent before any challenge.
    pub fn header(&self) -> Option<String> {
        match self {
            Auth::Anonymous => None,
            Auth::Basic(value) | Auth::Ecr { basic: value, .. } => Some(format!("Basic {value}")),
            Auth::Bearer(token) => Some(format!("Bearer {token}")),
        }
    }

    /// Which credentials these are, for messages (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Auth::Anonymous => {
                format!("no credentials (anonymous: neither {ENV_USERNAME} nor {ENV_TOKEN} is set)")
            }
            Auth::Basic(_) => format!("the account of {ENV_USERNAME} and {ENV_PASSWORD}"),
            Auth::Bearer(_) => format!("the token of {ENV_TOKEN}"),
            Auth::Ecr { credentials, .. } => format!("ECR's password for AWS, asked for with {credentials}"),
        }
    }

    /// What a token service is asked with: Basic credentials, when any.
    pub fn basic(&self) -> Option<&str> {
        match self {
            Auth::Basic(value) | Auth::Ecr { basic: value, .. } => Some(value),
            _ => None,
        }
    }

    /// The fix of a refusal (HTTP 401 or 403), for its one-line message.
    pub fn fix(&self, push: bool) -> String {
        let may = if push { "push to" } else { "pull from" };
        match self {
            Auth::Anonymous => format!(
                "it needs credentials: set {ENV_USERNAME} and {ENV_PASSWORD} (or {ENV_TOKEN}) to an account that may {may} it"
            ),
            Auth::Basic(_) => format!(
                "check that {ENV_USERNAME} and {ENV_PASSWORD} are right and that the account may {may} it"
            ),
            Auth::Bearer(_) => {
                format!("check that {ENV_TOKEN} is a token that has not expired and may {may} it")
            }
            Auth::Ecr { credentials, .. } => {
                let actions = if push {
                    "ecr:BatchCheckLayerAvailability, ecr:InitiateLayerUpload, ecr:UploadLayerPart, \
                     ecr:CompleteLayerUpload and ecr:PutImage"
                } else {
                    "ecr:BatchGetImage and ecr:GetDownloadUrlForLayer"
                };
                format!("check that the AWS credentials ({credentials}) may {actions} on the repository")
            }
        }
    }
}

/// The credentials for `registry`, found once.
pub fn resolve(registry: &Reference) -> Result<Auth> {
    if let Some(region) = registry.ecr_region() {
        return ecr(registry, region);
    }
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let Some(token) = var(ENV_TOKEN) {
        return Ok(Auth::Bearer(token.trim().to_string()));
    }
    match (var(ENV_USERNAME), var(ENV_PASSWORD)) {
        (Some(user), Some(password)) => Ok(Auth::Basic(base64(format!("{user}:{password}").as_bytes()))),
        (Some(_), None) | (None, Some(_)) => Err(EnvironmentError::new(format!(
            "{ENV_USERNAME} and {ENV_PASSWORD} go together: set both, or neither for anonymous access"
        ))
        .into()),
        (None, None) => Ok(Auth::Anonymous),
    }
}

/// A `WWW-Authenticate` challenge: its scheme (lowercase) and parameters
/// (names lowercase).
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Reads the first challenge of a `WWW-Authenticate` header (RFC 7235
/// §4.1): `Bearer realm="https://…",service="…",scope="a,b"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let value;
        if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((at, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(next);
                        }
                    }
                    '"' => {
                        end = Some(at + 1);
                        break;
                    }
                    ch => out.push(ch),
                }
            }
            value = out;
            rest = &quoted[end?..];
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_string();
            rest = &after[end..];
        }
        if name.is_empty() || name.contains(' ') {
            return None;
        }
        params.insert(name, value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The URL a Bearer token is asked for at: the challenge's realm (HTTPS,
/// or HTTP on this machine) with its service and the scopes.
pub fn token_url(challenge: &Challenge, scopes: &[String]) -> Result<String, String> {
    let realm = challenge
        .params
        .get("realm")
        .ok_or("its Bearer challenge names no realm")?;
    let Some((scheme, host, _)) = split_url(realm) else {
        return Err(format!("its token service `{realm}` is not an http(s) URL"));
    };
    if scheme != "https" && !is_loopback_host(&host) {
        return Err(format!(
            "its token service `{realm}` is plain HTTP, which would send credentials in the clear"
        ));
    }
    let mut query = Vec::new();
    if let Some(service) = challenge.params.get("service") {
        query.push(format!("service={}", sigv4::uri_encode(service, false)));
    }
    for scope in scopes {
        query.push(format!("scope={}", sigv4::uri_encode(scope, false)));
    }
    let separator = if realm.contains('?') { '&' } else { '?' };
    Ok(if query.is_empty() {
        realm.clone()
    } else {
        format!("{realm}{separator}{}", query.join("&"))
    })
}

/// The token of a token service's answer (`token`, or OAuth's `access_token`).
pub fn parse_token(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = value["token"].as_str().or(value["access_token"].as_str())?;
    let ok = !token.is_empty() && token.chars().all(|ch| ch.is_ascii_graphic());
    ok.then(|| token.to_string())
}

/// `scheme`, `host[:port]` and the rest (path and query) of an http(s) URL.
pub fn split_url(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(end);
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-.:[]_".contains(ch));
    host_ok.then(|| (scheme, host.to_string(), path.to_string()))
}

/// Whether `host[:port]` is this machine.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

/// ECR's password for `registry`, asked for with the AWS credentials.
fn ecr(registry: &Reference, region: &str) -> Result<Auth> {
    let aws = AwsEnv::read();
    let Some(credentials) = aws.credentials else {
        return Err(EnvironmentError::new(format!(
            "{registry} is Amazon ECR's, which needs AWS credentials: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or AWS_PROFILE to a profile with keys"
        ))
        .into());
    };
    let endpoint = match std::env::var(ENV_ECR_ENDPOINT)
        .ok()
        .filter(|value| !value.is_empty())
    {
        Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
        None if registry.registry.ends_with(".cn") => format!("https://api.ecr.{region}.amazonaws.com.cn"),
        None => format!("https://api.ecr.{region}.amazonaws.com"),
    };
    let host = match split_url(&endpoint) {
        Some((scheme, host, path)) if (scheme == "https" || is_loopback_host(&host)) && path.is_empty() => {
            host
        }
        _ => {
            return Err(EnvironmentError::new(format!(
                "{ENV_ECR_ENDPOINT} `{endpoint}` is not an https URL of a host (or http on 127.0.0.1)"
            ))
            .into())
        }
    };
    let config = ecr_request(&endpoint, &host, region, &credentials, SystemTime::now());
    let mut body = Vec::new();
    let who = format!(
        "the access key {} ({})",
        credentials.short_key_id(),
        credentials.source
    );
    let status = crate::store::curl::run(&config, &mut body, 64 * 1024, crate::store::curl::BASE_TIMEOUT_S)
        .map_err(|failure| {
        anyhow::anyhow!(
            "cannot reach ECR's API at {endpoint} for a password for {registry} ({}): is the region right?",
            match failure {
                crate::store::curl::Failure::Unavailable(why) => why,
                crate::store::curl::Failure::TooLarge => "its answer is too long".to_string(),
            }
        )
    })?;
    if status != 200 {
        let kind = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value["__type"].as_str().map(str::to_string))
            .map(|kind| format!(" {}", kind.rsplit('#').next().unwrap_or("")))
            .unwrap_or_default();
        bail!(EnvironmentError::new(format!(
            "ECR's GetAuthorizationToken answered HTTP {status}{kind} for {registry}: check that {who} \
             may ecr:GetAuthorizationToken in {region} and that a session token has not expired"
        )));
    }
    match parse_ecr_token(&body) {
        Some(basic) => Ok(Auth::Ecr {
            basic,
            credentials: who,
        }),
        None => bail!(
            "ECR's GetAuthorizationToken for {registry} answered without a token of the form AWS:<password>"
        ),
    }
}

/// curl's configuration for ECR's `GetAuthorizationToken`: a JSON 1.1 POST
/// signed with SigV4 for the service `ecr`.
fn ecr_request(
    endpoint: &str,
    host: &str,
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> String {
    const BODY: &str = "{}";
    let payload = bytes_sha256(BODY.as_bytes());
    let mut headers = BTreeMap::from([
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("host".to_string(), host.to_string()),
        ("x-amz-date".to_string(), sigv4::amz_date(now)),
        (
            "x-amz-target".to_string(),
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken".to_string(),
        ),
    ]);
    if let Some(token) = &credentials.token {
        headers.insert("x-amz-security-token".to_string(), token.clone());
    }
    let signer = Signer {
        key_id: &credentials.key_id,
        secret: &credentials.secret,
        region,
        service: "ecr",
    };
    let authorization = signer.authorization(&sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        payload_sha256: &payload,
    });
    headers.insert("authorization".to_string(), authorization);
    let mut lines = vec![
        format!("url = {}", quoted(&format!("{endpoint}/"))),
        "request = POST".to_string(),
        format!("data-binary = {}", quoted(BODY)),
    ];
    for (name, value) in &headers {
        lines.push(format!("header = {}", quoted(&format!("{name}: {value}"))));
    }
    lines.join("\n") + "\n"
}

/// The Basic value of `GetAuthorizationToken`'s answer: base64 of `AWS:<password>`.
fn parse_ecr_token(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = value["authorizationData"][0]["authorizationToken"]
        .as_str()?
        .trim();
    let decoded = base64_decode(token)?;
    decoded.starts_with(b"AWS:").then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_with_quoted_commas() {
        let challenge = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/python:pull,push""#,
        )
        .unwrap();
        assert_eq!(challenge.scheme, "bearer");
        assert_eq!(challenge.params["realm"], "https://auth.docker.io/token");
        assert_eq!(challenge.params["service"], "registry.docker.io");
        assert_eq!(challenge.params["scope"], "repository:library/python:pull,push");
        let basic = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(basic.scheme, "basic");
        assert_eq!(basic.params["realm"], "Registry Realm");
        let escaped =
            parse_challenge(r#"Bearer realm="https://a/t", error=invalid_token, x="a\"b""#).unwrap();
        assert_eq!(escaped.params["error"], "invalid_token");
        assert_eq!(escaped.params["x"], "a\"b");
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn token_urls_carry_service_and_scopes_and_need_https_off_this_machine() {
        let challenge =
            parse_challenge(r#"Bearer realm="https://auth.example/token",service="reg x""#).unwrap();
        let url = token_url(&challenge, &["repository:a/b:pull,push".to_string()]).unwrap();
        assert_eq!(
            url,
            "https://auth.example/token?service=reg%20x&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        let plain = parse_challenge(r#"Bearer realm="http://auth.example/token""#).unwrap();
        assert!(token_url(&plain, &[]).unwrap_err().contains("plain HTTP"));
        let local = parse_challenge(r#"Bearer realm="http://127.0.0.1:9/token?x=1""#).unwrap();
        assert_eq!(
            token_url(&local, &["s".to_string()]).unwrap(),
            "http://127.0.0.1:9/token?x=1&scope=s"
        );
        assert_eq!(parse_token(br#"{"token":"abc"}"#).as_deref(), Some("abc"));
        assert_eq!(parse_token(br#"{"access_token":"xyz"}"#).as_deref(), Some("xyz"));
        assert_eq!(parse_token(b"{\"token\":\"a\\nb\"}"), None);
    }

    #[test]
    fn the_ecr_request_is_signed_and_holds_the_secret_nowhere() {
        let credentials = Credentials {
            key_id: "XTASKTESTKEYID".into(),
            secret: "xtask-test-secret-never-sent".into(),
            token: Some("SESSIONTOKEN".into()),
            source: "AWS_ACCESS_KEY_ID from the environment".into(),
        };
        let config = ecr_request(
            "https://api.ecr.eu-west-1.amazonaws.com",
            "api.ecr.eu-west-1.amazonaws.com",
            "eu-west-1",
            &credentials,
            SystemTime::UNIX_EPOCH,
        );
        assert!(
            config.contains("url = \"https://api.ecr.eu-west-1.amazonaws.com/\""),
            "{config}"
        );
        assert!(
            config.contains(
                "header = \"x-amz-target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken\""
            ),
            "{config}"
        );
        assert!(
            config.contains("Credential=XTASKTESTKEYID/19700101/eu-west-1/ecr/aws4_request"),
            "{config}"
        );
        assert!(!config.contains("never-sent"), "{config}");
        let basic = base64(b"AWS:secret-password");
        let answer = format!(r#"{{"authorizationData":[{{"authorizationToken":"{basic}","expiresAt":1}}]}}"#);
        assert_eq!(parse_ecr_token(answer.as_bytes()), Some(basic));
        let not_aws = base64(b"root:x");
        let answer = format!(r#"{{"authorizationData":[{{"authorizationToken":"{not_aws}"}}]}}"#);
        assert_eq!(parse_ecr_token(answer.as_bytes()), None);
    }

    #[test]
    fn refusals_name_the_variables_to_set() {
        assert!(Auth::Anonymous.fix(false).contains(ENV_USERNAME));
        assert!(Auth::Anonymous.fix(true).contains("push to"));
        let ecr = Auth::Ecr {
            basic: "x".into(),
            credentials: "the access key AKIA…MPLE (env)".into(),
        };
        assert!(ecr.fix(false).contains("ecr:BatchGetImage"));
        assert!(!Auth::Basic("c2VjcmV0".into()).fix(false).contains("c2VjcmV0"));
    }
}
