//! One registry spoken to: every request a curl configuration on stdin,
//! with the credentials `auth.rs` found, a Bearer token asked for once per
//! repository when the registry challenges, each answer bounded in size and
//! time. Redirects (a blob at a CDN) are followed, over HTTPS only unless
//! the registry is on this machine; the Authorization header never follows
//! one to another host (curl drops it).
//!
//! The distribution spec's endpoints: `GET|HEAD /v2/<name>/manifests/<reference>`,
//! `PUT` of the same, `GET|HEAD /v2/<name>/blobs/<digest>`, uploads in
//! `upload.rs` (https://github.com/opencontainers/distribution-spec/blob/main/spec.md).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::auth::{self, Auth};
use super::manifest::{self, Descriptor, Parsed, ACCEPTED, MANIFEST_LIMIT};
use super::Reference;
use crate::facts::Arch;
use crate::ground::atomic::{self, temp_sibling};
use crate::ground::digest::hex;
use crate::ground::error::EnvironmentError;
use crate::store::curl::{self, max_time, quoted, ERROR_BODY_LIMIT};

/// The headers of an answer the client reads.
/// What a HEAD may announce: a blob's size, up to Lambda's whole image.
const HEAD_LIMIT: u64 = crate::facts::MAX_IMAGE_BYTES;

const HEADERS: [&str; 5] = [
    "www-authenticate",
    "location",
    "range",
    "content-type",
    "docker-content-digest",
];
/// A token service's answer may be this long.
const TOKEN_LIMIT: u64 = 1024 * 1024;

/// A registry, its credentials resolved once and its tokens kept per repository.
pub struct Client {
    /// `127.0.0.1:5000`, `public.ecr.aws`: for messages.
    registry: String,
    /// `https://host` (`http://` on this machine).
    base: String,
    loopback: bool,
    auth: Auth,
    push: bool,
    tokens: Mutex<BTreeMap<String, String>>,
}

/// The platform manifest of an image, as fetched and verified.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `sha256:…` of the platform manifest's bytes.
    pub digest: String,
    /// The platform manifest's exact bytes.
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// What an answer's body goes into.
pub(super) enum Sink {
    Memory(Vec<u8>),
    File {
        file: fs::File,
        hasher: Sha256,
        written: u64,
    },
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Memory(bytes) => bytes.write(buf),
            Sink::File {
                file,
                hasher,
                written,
            } => {
                let n = file.write(buf)?;
                hasher.update(&buf[..n]);
                *written += n as u64;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Memory(_) => Ok(()),
            Sink::File { file, .. } => file.flush(),
        }
    }
}

impl Sink {
    fn reset(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Memory(bytes) => bytes.clear(),
            Sink::File {
                file,
                hasher,
                written,
            } => {
                file.set_len(0)?;
                file.rewind()?;
                *hasher = Sha256::new();
                *written = 0;
            }
        }
        Ok(())
    }

    /// The body as text, for an error message: the registry's error code
    /// and message, on one line.
    fn error_text(&self) -> String {
        let Sink::Memory(bytes) = self else {
            return String::new();
        };
        registry_error(bytes)
    }
}

/// The request body.
pub(super) enum Body<'a> {
    None,
    /// The file, sent as it is (`PUT` or `PATCH`).
    File(&'a Path),
}

/// One request.
pub(super) struct Request<'a> {
    pub method: &'a str,
    pub url: String,
    /// The repository it is about, for its token's scope.
    pub repository: &'a str,
    pub headers: Vec<String>,
    pub body: Body<'a>,
    /// The most of the answer's body read.
    pub limit: u64,
    /// The bytes it may carry either way, for its time bound.
    pub bytes: u64,
}

impl Client {
    /// A client for `registry`'s registry. `push`: ask for push and pull
    /// scopes when a token service is used.
    pub fn new(registry: &Reference, push: bool) -> Result<Client> {
        Ok(Client {
            registry: registry.registry.clone(),
            base: registry.base_url(),
            loopback: registry.is_loopback(),
            auth: auth::resolve(registry)?,
            push,
            tokens: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Which credentials the client uses, for messages (never the secret).
    pub fn credentials_used(&self) -> String {
        self.auth.describe()
    }

    /// `<base>/v2/<repository>/<rest>`.
    pub(super) fn url(&self, repository: &str, rest: &str) -> String {
        format!("{}/v2/{repository}/{rest}", self.base)
    }

    /// An upload's `Location`, made absolute; never plain HTTP off this machine.
    pub(super) fn resolve_location(&self, location: &str) -> Result<String> {
        if location.starts_with('/') {
            return Ok(format!("{}{location}", self.base));
        }
        match auth::split_url(location) {
            Some((scheme, host, _)) if scheme == "https" || auth::is_loopback_host(&host) => {
                Ok(location.to_string())
            }
            _ => bail!(
                "the registry {} sent the upload location `{location}`, which is not an https URL",
                self.registry
            ),
        }
    }

    /// The platform manifest of `reference` for `linux/<arch>`: an index
    /// is followed to it; a digest in `reference` is checked against the
    /// bytes it names (the index's or the manifest's).
    pub fn platform_manifest(&self, reference: &Reference, arch: Arch) -> Result<Resolved> {
        let repository = &reference.repository;
        let (bytes, content_type) = self.manifest(repository, reference.target(), &reference.to_string())?;
        let digest = super::digest_of(&bytes);
        if let Some(wanted) = &reference.digest {
            if *wanted != digest {
                bail!(
                    "corrupt manifest: {reference} answered bytes whose digest is {digest}: \
                     the registry {} is not serving what the digest names (retry, or pin another digest)",
                    self.registry
                );
            }
        }
        let parsed = manifest::parse(&bytes, content_type.as_deref())
            .with_context(|| format!("reading the manifest of {reference}"))?;
        let (digest, bytes, parsed) = match parsed {
            Parsed::Image { .. } => (digest, bytes, parsed),
            Parsed::Index { manifests } => {
                let entry = manifest::select_platform(&manifests, arch).map_err(|have| {
                    anyhow!(
                        "{reference} has no linux/{} image ({have}): use a base built for {}, or the function's other architecture",
                        arch.oci_name(),
                        arch.oci_name()
                    )
                })?;
                let named = reference.at_digest(&entry.digest);
                let (bytes, content_type) = self.manifest(repository, &entry.digest, &named.to_string())?;
                let digest = super::digest_of(&bytes);
                if digest != entry.digest {
                    bail!(
                        "corrupt manifest: {named} answered bytes whose digest is {digest} (the registry {} is not serving what its index names)",
                        self.registry
                    );
                }
                let parsed = manifest::parse(&bytes, content_type.as_deref())
                    .with_context(|| format!("reading the manifest of {named}"))?;
                if let Parsed::Index { .. } = parsed {
                    bail!(
                        "{named}, the linux/{} entry of {reference}, is an index again, not an image",
                        arch.oci_name()
                    );
                }
                (digest, bytes, parsed)
            }
        };
        let Parsed::Image {
            media_type,
            config,
            layers,
        } = parsed
        else {
            unreachable!("an index was followed above")
        };
        Ok(Resolved {
            digest,
            bytes,
            media_type,
            config,
            layers,
        })
    }

    /// A manifest's bytes and content type.
    fn manifest(&self, repository: &str, target: &str, named: &str) -> Result<(Vec<u8>, Option<String>)> {
        let request = Request {
            method: "GET",
            url: self.url(repository, &format!("manifests/{target}")),
            repository,
            headers: vec![format!("Accept: {}", ACCEPTED.join(", "))],
            body: Body::None,
            limit: MANIFEST_LIMIT,
            bytes: MANIFEST_LIMIT,
        };
        let mut sink = Sink::Memory(Vec::new());
        let answer = self.send(&request, &mut sink)?;
        match answer.status {
            200 => {}
            404 => bail!(
                "{named} is not in the registry{}: check the repository and the tag (or digest)",
                sink.error_text()
            ),
            status => return Err(self.failure(&request, status, &sink)),
        }
        let Sink::Memory(bytes) = sink else {
            unreachable!("a manifest is read into memory")
        };
        Ok((bytes, answer.headers.get("content-type").cloned()))
    }

    /// Streams the blob `digest` of `repository` into `dest` (whole or
    /// absent), checking its size and sha256.
    pub fn blob_to_file(&self, repository: &str, digest: &str, size: u64, dest: &Path) -> Result<()> {
        if !manifest::is_digest(digest) {
            bail!("`{digest}` is not a sha256 digest");
        }
        let temp = temp_sibling(dest);
        let file = fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let mut sink = Sink::File {
            file,
            hasher: Sha256::new(),
            written: 0,
        };
        let request = Request {
            method: "GET",
            url: self.url(repository, &format!("blobs/{digest}")),
            repository,
            headers: Vec::new(),
            body: Body::None,
            limit: size,
            bytes: size,
        };
        let outcome = self.send(&request, &mut sink);
        let corrupt = |why: String| {
            anyhow!(
                "corrupt blob {digest} from {}/{repository}: {why}; nothing was kept (retry; if it \
                 persists, the registry's copy is damaged)",
                self.registry
            )
        };
        let result = match outcome {
            Err(err) => match &sink {
                Sink::File { written, .. } if *written > size => {
                    Err(corrupt(format!("it is longer than {size} bytes")))
                }
                _ => Err(err),
            },
            Ok(answer) => match (answer.status, sink) {
                (200, Sink::File { file, hasher, written }) => {
                    let got = format!("sha256:{}", hex(&hasher.finalize()));
                    if written != size {
                        Err(corrupt(format!("it is {written} bytes, not {size}")))
                    } else if got != digest {
                        Err(corrupt(format!("its bytes hash to {got}")))
                    } else {
                        file.sync_all()
                            .and_then(|()| fs::rename(&temp, dest))
                            .with_context(|| format!("moving {} into place", dest.display()))
                    }
                }
                (404, _) => Err(anyhow!(
                    "{}/{repository} has no blob {digest}, though its manifest names it: the image is incomplete in the registry",
                    self.registry
                )),
                (status, _) => Err(self.failure(&request, status, &Sink::Memory(read_prefix(&temp)))),
            },
        };
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Whether `repository` has the blob `digest` (HEAD).
    pub fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let request = Request {
            method: "HEAD",
            url: self.url(repository, &format!("blobs/{digest}")),
            repository,
            headers: Vec::new(),
            body: Body::None,
            // curl holds a HEAD's Content-Length (the blob's size) against
            // --max-filesize although no body comes: no bound of ours here.
            limit: HEAD_LIMIT,
            bytes: 0,
        };
        let mut sink = Sink::Memory(Vec::new());
        match self.send(&request, &mut sink)?.status {
            200 => Ok(true),
            404 => Ok(false),
            status => Err(self.failure(&request, status, &sink)),
        }
    }

    /// PUTs a manifest as `target` (its digest or a tag).
    pub fn put_manifest(&self, repository: &str, target: &str, bytes: &[u8], media_type: &str) -> Result<()> {
        let temp = Scratch::new()?;
        let body = temp.write("manifest.json", bytes)?;
        let request = Request {
            method: "PUT",
            url: self.url(repository, &format!("manifests/{target}")),
            repository,
            headers: vec![format!("Content-Type: {media_type}")],
            body: Body::File(&body),
            limit: ERROR_BODY_LIMIT,
            bytes: bytes.len() as u64,
        };
        let mut sink = Sink::Memory(Vec::new());
        let answer = self.send(&request, &mut sink)?;
        if !matches!(answer.status, 200 | 201) {
            return Err(self.failure(&request, answer.status, &sink));
        }
        let digest = super::digest_of(bytes);
        if let Some(stored) = answer.headers.get("docker-content-digest") {
            if *stored != digest {
                bail!(
                    "{}/{repository} stored the manifest {target} as {stored}, not {digest}: the registry rewrote it",
                    self.registry
                );
            }
        }
        Ok(())
    }

    /// Sends `request`, answering a Bearer challenge once with a token
    /// from its realm.
    pub(super) fn send(&self, request: &Request, sink: &mut Sink) -> Result<curl::Answer> {
        let mut challenged = false;
        loop {
            let config = self.config(request);
            let answer = curl::run_with_headers(
                &config,
                sink,
                request.limit,
                max_time(request.bytes.max(request.limit.min(MANIFEST_LIMIT))),
                &HEADERS,
            )
            .map_err(|failure| match failure {
                curl::Failure::Unavailable(why) => EnvironmentError::new(format!(
                    "cannot reach the registry at {} ({why}): is it running? is the name right?",
                    request.url
                ))
                .into(),
                curl::Failure::TooLarge => anyhow!(
                    "the registry {} answered {} {} with more than the {} bytes expected (an answer longer than asked for)",
                    self.registry,
                    request.method,
                    request.url,
                    request.limit
                ),
            })?;
            if answer.status != 401 || challenged || matches!(self.auth, Auth::Bearer(_)) {
                return Ok(answer);
            }
            let Some(challenge) = answer
                .headers
                .get("www-authenticate")
                .and_then(|header| auth::parse_challenge(header))
                .filter(|challenge| challenge.scheme == "bearer")
            else {
                return Ok(answer);
            };
            challenged = true;
            let token = self.token(request.repository, &challenge)?;
            self.tokens
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(request.repository.to_string(), token);
            sink.reset().context("starting an answer over")?;
        }
    }

    /// A token for `repository` from the challenge's realm.
    fn token(&self, repository: &str, challenge: &auth::Challenge) -> Result<String> {
        let mut scopes = Vec::new();
        if let Some(scope) = challenge.params.get("scope") {
            scopes.push(scope.clone());
        }
        let ours = format!(
            "repository:{repository}:{}",
            if self.push { "pull,push" } else { "pull" }
        );
        if !scopes.contains(&ours) {
            scopes.push(ours);
        }
        let url = auth::token_url(challenge, &scopes)
            .map_err(|why| anyhow!("the registry {} asks for a token, but {why}", self.registry))?;
        let mut lines = vec![
            format!("url = {}", quoted(&url)),
            "location".to_string(),
            "max-redirs = 5".to_string(),
            format!(
                "proto-redir = {}",
                if self.loopback {
                    "\"=http,https\""
                } else {
                    "\"=https\""
                }
            ),
        ];
        if let Some(basic) = self.auth.basic() {
            lines.push(format!(
                "header = {}",
                quoted(&format!("Authorization: Basic {basic}"))
            ));
        }
        let mut body = Vec::new();
        let status = curl::run(
            &(lines.join("\n") + "\n"),
            &mut body,
            TOKEN_LIMIT,
            curl::BASE_TIMEOUT_S,
        )
        .map_err(|failure| {
            let why = match failure {
                curl::Failure::Unavailable(why) => why,
                curl::Failure::TooLarge => "its answer is too long".to_string(),
            };
            let realm = challenge.params.get("realm").map_or("", String::as_str);
            EnvironmentError::new(format!(
                "cannot reach the token service {realm} of the registry {} ({why}): is it running?",
                self.registry
            ))
        })?;
        if status != 200 {
            bail!(EnvironmentError::new(format!(
                "the token service of the registry {} refused a token for {repository} (HTTP {status}): {}",
                self.registry,
                self.auth.fix(self.push)
            )));
        }
        auth::parse_token(&body).ok_or_else(|| {
            anyhow!(
                "the token service of the registry {} answered without a token",
                self.registry
            )
        })
    }

    /// curl's configuration for `request`: every header, the credentials
    /// among them, on curl's standard input.
    pub(super) fn config(&self, request: &Request) -> String {
        let mut lines = vec![format!("url = {}", quoted(&request.url))];
        match (request.method, &request.body) {
            ("HEAD", _) => lines.push("head".to_string()),
            (method, Body::File(path)) => {
                lines.push(format!("upload-file = {}", quoted(&path.to_string_lossy())));
                lines.push(format!("request = {method}"));
                // No `Expect: 100-continue` round trip.
                lines.push(format!("header = {}", quoted("Expect:")));
            }
            (method, Body::None) => lines.push(format!("request = {method}")),
        }
        if matches!(request.method, "GET" | "HEAD") {
            let protocols = if self.loopback {
                "\"=http,https\""
            } else {
                "\"=https\""
            };
            lines.extend([
                "location".to_string(),
                "max-redirs = 5".to_string(),
                format!("proto-redir = {protocols}"),
            ]);
        }
        if self.loopback {
            lines.push(format!("noproxy = {}", quoted("*")));
        }
        for header in &request.headers {
            lines.push(format!("header = {}", quoted(header)));
        }
        if let Some(authorization) = self.authorization(request) {
            lines.push(format!(
                "header = {}",
                quoted(&format!("Authorization: {authorization}"))
            ));
        }
        lines.join("\n") + "\n"
    }

    /// The Authorization header's value for `request`: the repository's
    /// token once there is one, else the static credentials; none to
    /// another host than the registry's.
    fn authorization(&self, request: &Request) -> Option<String> {
        if !request.url.starts_with(&format!("{}/", self.base)) {
            return None;
        }
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match tokens.get(request.repository) {
            Some(token) => Some(format!("Bearer {token}")),
            None => self.auth.header(),
        }
    }

    /// The error of an answer that is not the one expected.
    pub(super) fn failure(&self, request: &Request, status: u16, sink: &Sink) -> anyhow::Error {
        let what = format!("{} {}", request.method, request.url);
        match status {
            401 | 403 => EnvironmentError::new(format!(
                "the registry {} refused {what} (HTTP {status}{}): {}",
                self.registry,
                sink.error_text(),
                self.auth.fix(self.push)
            ))
            .into(),
            status => anyhow!(
                "the registry {} answered {what} with HTTP {status}{}",
                self.registry,
                sink.error_text()
            ),
        }
    }
}

/// A private temporary folder, removed when dropped.
pub(super) struct Scratch(PathBuf);

impl Scratch {
    pub(super) fn new() -> Result<Scratch> {
        Ok(Scratch(atomic::private_temp_dir("xtask-registry-", 0o700)?))
    }

    pub(super) fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.0.join(name);
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The first bytes of a file, for an error answer written to it.
pub(super) fn read_prefix(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = Vec::new();
    if let Ok(file) = fs::File::open(path) {
        let _ = file.take(ERROR_BODY_LIMIT).read_to_end(&mut bytes);
    }
    bytes
}

/// ` (CODE: message)` of a registry's error answer (`{"errors": [{code, message}]}`),
/// on one line, short; empty when it is not one.
pub(super) fn registry_error(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(first) = value["errors"].get(0) else {
        return String::new();
    };
    let code = first["code"].as_str().unwrap_or("");
    let message = first["message"].as_str().unwrap_or("");
    let text: String = format!("{code}: {message}")
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .take(200)
        .collect();
    if code.is_empty() {
        String::new()
    } else {
        format!(" {}", text.trim_end_matches([':', ' ']))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(registry: &str, auth: Auth) -> Client {
        let reference = Reference::parse(&format!("{registry}/x")).unwrap();
        Client {
            registry: reference.registry.clone(),
            base: reference.base_url(),
            loopback: reference.is_loopback(),
            auth,
            push: true,
            tokens: Mutex::new(BTreeMap::new()),
        }
    }

    #[test]
    fn the_secret_is_only_in_the_authorization_header_and_only_to_the_registry() {
        let secret = crate::ground::digest::base64(b"alice:s3cret-pass");
        let client = client("registry.example", Auth::Basic(secret.clone()));
        let request = Request {
            method: "GET",
            url: client.url("team/app", "blobs/sha256:00"),
            repository: "team/app",
            headers: vec!["Accept: x".to_string()],
            body: Body::None,
            limit: 10,
            bytes: 10,
        };
        let config = client.config(&request);
        let holding: Vec<&str> = config.lines().filter(|line| line.contains(&secret)).collect();
        assert_eq!(holding, [format!("header = \"Authorization: Basic {secret}\"")]);
        assert!(
            config.contains("url = \"https://registry.example/v2/team/app/blobs/sha256:00\""),
            "{config}"
        );
        assert!(config.contains("proto-redir = \"=https\""), "{config}");
        assert!(!config.contains("noproxy"), "{config}");
        let elsewhere = Request {
            url: "https://cdn.example/blob".to_string(),
            ..request
        };
        assert!(!client.config(&elsewhere).contains("Authorization"));
        client
            .tokens
            .lock()
            .unwrap()
            .insert("team/app".to_string(), "TOKEN".to_string());
        let tokened = Request {
            url: client.url("team/app", "manifests/1"),
            ..elsewhere
        };
        assert!(client.config(&tokened).contains("Authorization: Bearer TOKEN"));
        let failure = client.failure(
            &tokened,
            401,
            &Sink::Memory(
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
            ),
        );
        let message = failure.to_string();
        assert!(
            message.contains("UNAUTHORIZED: authentication required"),
            "{message}"
        );
        assert!(message.contains("XTASK_REGISTRY_USERNAME"), "{message}");
        assert!(
            !message.contains(&secret) && !message.contains("TOKEN"),
            "{message}"
        );
    }

    #[test]
    fn locations_stay_on_https_off_this_machine() {
        let remote = client("registry.example", Auth::Anonymous);
        assert_eq!(
            remote.resolve_location("/v2/x/blobs/uploads/1?_state=a").unwrap(),
            "https://registry.example/v2/x/blobs/uploads/1?_state=a"
        );
        assert!(remote.resolve_location("http://registry.example/v2/x").is_err());
        let local = client("127.0.0.1:5000", Auth::Anonymous);
        assert_eq!(
            local
                .resolve_location("http://127.0.0.1:5000/v2/x/blobs/uploads/1")
                .unwrap(),
            "http://127.0.0.1:5000/v2/x/blobs/uploads/1"
        );
        assert!(local
            .config(&Request {
                method: "HEAD",
                url: local.url("x", "blobs/sha256:00"),
                repository: "x",
                headers: vec![],
                body: Body::None,
                limit: 1,
                bytes: 0,
            })
            .contains("proto-redir = \"=http,https\""));
    }
}
