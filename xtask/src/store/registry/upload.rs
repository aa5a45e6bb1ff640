//! A blob's upload, chunked and resumable, as the distribution spec's
//! "Pushing a blob in chunks" says: `POST /v2/<name>/blobs/uploads/`
//! opens it (202 and a `Location`), each chunk is a `PATCH` to the latest
//! `Location` with `Content-Range: <start>-<end>` (inclusive), and a `PUT`
//! to it with `?digest=` closes it. When a chunk fails, the upload's status
//! (`GET` its `Location`: 204 and `Range: 0-<last byte>`) says where to go
//! on from, a bounded number of times; an upload the registry dropped
//! (404) is started over.
//!
//! A blob the registry holds in another repository is mounted instead
//! (`POST …/blobs/uploads/?mount=<digest>&from=<repository>`, the spec's
//! "Mounting a blob from another repository"): 201 when it linked the blob,
//! else an ordinary upload opened (202), which the blob's bytes then go to.
//!
//! Chunks go to curl as files of a private temporary folder (curl's
//! standard input carries its configuration).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::client::{Body, Client, Request, Scratch, Sink};
use crate::ground::digest::file_sha256;
use crate::store::curl::ERROR_BODY_LIMIT;

/// A chunk: big enough that a layer takes few requests, above ECR's
/// 5 MiB minimum for every chunk but the last.
pub const CHUNK: u64 = 16 * 1024 * 1024;
/// How many failed chunks an upload survives.
const RETRIES: u32 = 4;

/// `Content-Range` of the chunk of `len` bytes (> 0) at `start`: the first
/// and the last byte, inclusive.
pub fn content_range(start: u64, len: u64) -> String {
    format!("{start}-{}", start + len - 1)
}

/// How many bytes an upload's `Range: 0-<last>` says the registry has.
/// `0-0` is read as none: the distribution registry says it for an empty
/// upload (and for one byte, which a chunk never leaves alone).
pub fn received(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (first, last) = range.split_once('-')?;
    let (first, last) = (
        first.trim().parse::<u64>().ok()?,
        last.trim().parse::<u64>().ok()?,
    );
    if first != 0 {
        return None;
    }
    Some(if last == 0 { 0 } else { last + 1 })
}

/// `location` with `?digest=` (or `&digest=`) added.
pub fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={}", digest.replace(':', "%3A"))
}

/// Whether a chunk's failure may be retried, and why it failed.
enum ChunkFailure {
    Retry(String),
    Fatal(anyhow::Error),
}

/// How a blob got into a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Uploaded,
    /// Linked from the other repository of the same registry it was in.
    Mounted,
}

impl Client {
    /// Puts `source` into `repository` as the blob `digest`: mounted from
    /// `mount_from` (a repository of the same registry) when that one has
    /// it and the registry mounts, else uploaded.
    pub fn upload_blob(
        &self,
        repository: &str,
        digest: &str,
        source: &Path,
        mount_from: Option<&str>,
    ) -> Result<Sent> {
        let hex = file_sha256(source)?.hex;
        if format!("sha256:{hex}") != digest {
            bail!(
                "{} does not hash to {digest}: it changed since it was written",
                source.display()
            );
        }
        let size = fs::metadata(source)
            .with_context(|| format!("reading {}", source.display()))?
            .len();
        let mut location = match mount_from {
            Some(from) => match self.mount(repository, digest, from)? {
                None => return Ok(Sent::Mounted),
                Some(location) => location,
            },
            None => self.open_upload(repository)?,
        };
        let scratch = Scratch::new()?;
        let mut offset = 0;
        let mut failures = 0;
        let mut file = fs::File::open(source).with_context(|| format!("opening {}", source.display()))?;
        while offset < size {
            let len = CHUNK.min(size - offset);
            let mut chunk = vec![0; len as usize];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut chunk))
                .with_context(|| format!("reading {}", source.display()))?;
            let path = scratch.write("chunk", &chunk)?;
            drop(chunk);
            match self.patch(repository, &location, &path, offset, len) {
                Ok(next) => {
                    location = next;
                    offset += len;
                }
                Err(ChunkFailure::Fatal(err)) => return Err(err),
                Err(ChunkFailure::Retry(why)) => {
                    failures += 1;
                    if failures > RETRIES {
                        bail!(
                            "uploading {digest} to {}/{repository} failed {failures} times, the last: {why}",
                            self.registry()
                        );
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200 * u64::from(failures)));
                    let status = self.upload_status(repository, &location).with_context(|| {
                        format!("asking where the upload of {digest} stands after: {why}")
                    })?;
                    match status {
                        Some((next, had)) if had <= size => {
                            location = next;
                            offset = had;
                        }
                        Some((_, had)) => bail!(
                            "the registry {} says it has {had} bytes of {digest}, which has {size}",
                            self.registry()
                        ),
                        // The registry dropped the upload: start it over.
                        None => {
                            location = self.open_upload(repository)?;
                            offset = 0;
                        }
                    }
                }
            }
        }
        self.close_upload(repository, &location, digest)?;
        Ok(Sent::Uploaded)
    }

    /// Asks the registry to mount `digest` from `from`: `None` when it did
    /// (201), else the location of the ordinary upload it opened instead
    /// (202), or of a new one when it refused the mount outright (a
    /// registry without mounts, or a token without pull on `from`).
    fn mount(&self, repository: &str, digest: &str, from: &str) -> Result<Option<String>> {
        let query = format!("?mount={}&from={from}", digest.replace(':', "%3A"));
        match self.post_upload(repository, &query) {
            Ok((201, _)) => Ok(None),
            Ok((202, Some(location))) => Ok(Some(location)),
            _ => self.open_upload(repository).map(Some),
        }
    }

    /// `POST /v2/<name>/blobs/uploads/`: the upload's location.
    fn open_upload(&self, repository: &str) -> Result<String> {
        match self.post_upload(repository, "")? {
            (202, Some(location)) => Ok(location),
            (202, None) => Err(anyhow!(
                "the registry {} opened an upload without a Location",
                self.registry()
            )),
            (status, _) => Err(anyhow!(
                "the registry {} answered POST {} with HTTP {status}, not 202 (an upload opened)",
                self.registry(),
                self.url(repository, "blobs/uploads/")
            )),
        }
    }

    /// `POST /v2/<name>/blobs/uploads/<query>`: its status (201 or 202,
    /// any other is the request's failure) and its `Location`, made absolute.
    fn post_upload(&self, repository: &str, query: &str) -> Result<(u16, Option<String>)> {
        let request = Request {
            method: "POST",
            url: self.url(repository, &format!("blobs/uploads/{query}")),
            repository,
            headers: vec!["Content-Length: 0".to_string()],
            body: Body::None,
            limit: ERROR_BODY_LIMIT,
            bytes: 0,
        };
        let mut sink = Sink::Memory(Vec::new());
        let answer = self.send(&request, &mut sink)?;
        if !matches!(answer.status, 201 | 202) {
            return Err(self.failure(&request, answer.status, &sink));
        }
        let location = answer
            .headers
            .get("location")
            .map(|location| self.resolve_location(location))
            .transpose()?;
        Ok((answer.status, location))
    }

    /// One chunk: the next location, or why it failed.
    fn patch(
        &self,
        repository: &str,
        location: &str,
        chunk: &Path,
        start: u64,
        len: u64,
    ) -> Result<String, ChunkFailure> {
        let request = Request {
            method: "PATCH",
            url: location.to_string(),
            repository,
            headers: vec![
                "Content-Type: application/octet-stream".to_string(),
                format!("Content-Range: {}", content_range(start, len)),
            ],
            body: Body::File(chunk),
            limit: ERROR_BODY_LIMIT,
            bytes: len,
        };
        let mut sink = Sink::Memory(Vec::new());
        let answer = self
            .send(&request, &mut sink)
            .map_err(|err| ChunkFailure::Retry(format!("{err:#}")))?;
        match answer.status {
            202 => match answer.headers.get("location") {
                Some(next) => self.resolve_location(next).map_err(ChunkFailure::Fatal),
                None => Ok(location.to_string()),
            },
            401 | 403 => Err(ChunkFailure::Fatal(self.failure(&request, answer.status, &sink))),
            status => Err(ChunkFailure::Retry(
                self.failure(&request, status, &sink).to_string(),
            )),
        }
    }

    /// `GET <location>`: the upload's location and the bytes it has; none
    /// when the registry no longer has the upload (the distribution
    /// registry cancels one whose chunk broke half way).
    fn upload_status(&self, repository: &str, location: &str) -> Result<Option<(String, u64)>> {
        let request = Request {
            method: "GET",
            url: location.to_string(),
            repository,
            headers: Vec::new(),
            body: Body::None,
            limit: ERROR_BODY_LIMIT,
            bytes: 0,
        };
        let mut sink = Sink::Memory(Vec::new());
        let answer = self.send(&request, &mut sink)?;
        match answer.status {
            204 => {}
            404 => return Ok(None),
            status => return Err(self.failure(&request, status, &sink)),
        }
        let had = answer
            .headers
            .get("range")
            .and_then(|range| received(range))
            .unwrap_or(0);
        let next = match answer.headers.get("location") {
            Some(next) => self.resolve_location(next)?,
            None => location.to_string(),
        };
        Ok(Some((next, had)))
    }

    /// `PUT <location>?digest=`: the blob, whole.
    fn close_upload(&self, repository: &str, location: &str, digest: &str) -> Result<()> {
        let request = Request {
            method: "PUT",
            url: with_digest(location, digest),
            repository,
            headers: vec!["Content-Length: 0".to_string()],
            body: Body::None,
            limit: ERROR_BODY_LIMIT,
            bytes: 0,
        };
        let mut sink = Sink::Memory(Vec::new());
        let answer = self.send(&request, &mut sink)?;
        if answer.status != 201 {
            return Err(self.failure(&request, answer.status, &sink));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_read_back() {
        assert_eq!(content_range(0, CHUNK), format!("0-{}", CHUNK - 1));
        assert_eq!(content_range(CHUNK, 10), format!("{CHUNK}-{}", CHUNK + 9));
        assert_eq!(received("0-16777215"), Some(CHUNK));
        assert_eq!(received("bytes=0-99"), Some(100));
        assert_eq!(received("0-0"), Some(0));
        assert_eq!(received("5-9"), None);
        assert_eq!(received("x"), None);
        // What a failed chunk leaves: the next chunk starts where the registry stopped.
        let size = 2 * CHUNK + 5;
        let mut offset = 0;
        let mut ranges = Vec::new();
        while offset < size {
            let len = CHUNK.min(size - offset);
            ranges.push(content_range(offset, len));
            offset += len;
        }
        assert_eq!(
            ranges,
            [
                format!("0-{}", CHUNK - 1),
                format!("{CHUNK}-{}", 2 * CHUNK - 1),
                format!("{}-{}", 2 * CHUNK, 2 * CHUNK + 4)
            ]
        );
    }

    #[test]
    fn the_digest_is_added_to_the_location_query() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            with_digest("http://h/v2/x/blobs/uploads/1?_state=s", &digest),
            format!(
                "http://h/v2/x/blobs/uploads/1?_state=s&digest=sha256%3A{}",
                "a".repeat(64)
            )
        );
        assert_eq!(
            with_digest("/v2/x/blobs/uploads/1", &digest),
            format!("/v2/x/blobs/uploads/1?digest=sha256%3A{}", "a".repeat(64))
        );
    }
}
