//! Reading one HTTP/1.1 request within bounds: a line, the number of
//! headers and a body have a most, a chunk's size is checked before a byte
//! of it is read, nothing is allocated from a size the client claims
//! before the bytes arrive, and a request once started must arrive whole
//! within [`Limits::request_time`]. Between requests a connection may stay
//! idle as long as it likes: the runtime holds its connection while the
//! handler runs.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::facts;

/// The bounds of one connection's requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub line_bytes: usize,
    pub headers: usize,
    pub body_bytes: u64,
    pub request_time: Duration,
}

pub struct Head {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a request is not served; the connection closes after the answer.
#[derive(Debug)]
pub enum Refused {
    /// The client went away, or was too slow: no answer.
    Gone,
    /// Not HTTP as this server takes it: 400, 431 or 501.
    Bad(u16, &'static str),
    /// A body over [`Limits::body_bytes`]: 413.
    TooLarge,
}

impl From<io::Error> for Refused {
    fn from(_: io::Error) -> Refused {
        Refused::Gone
    }
}

/// The stream, with a deadline once a request has started.
pub struct Timed {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = match self.deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(left)
            }
        };
        self.stream.set_read_timeout(timeout)?;
        self.stream.read(buf)
    }
}

pub struct Reader {
    inner: BufReader<Timed>,
    limits: Limits,
}

impl Reader {
    pub fn new(stream: TcpStream, limits: Limits) -> Reader {
        Reader {
            inner: BufReader::new(Timed {
                stream,
                deadline: None,
            }),
            limits,
        }
    }

    /// The next request's line and headers; `Ok(None)` when the client
    /// closed the connection between requests.
    pub fn head(&mut self) -> Result<Option<Head>, Refused> {
        self.inner.get_mut().deadline = None;
        if self.inner.fill_buf()?.is_empty() {
            return Ok(None);
        }
        self.inner.get_mut().deadline = Some(Instant::now() + self.limits.request_time);
        let line = self.line(self.limits.line_bytes)?;
        let mut words = line.split(' ').filter(|word| !word.is_empty());
        let (Some(method), Some(path), Some(version)) = (words.next(), words.next(), words.next()) else {
            return Err(Refused::Bad(400, "a bad request line"));
        };
        if !version.starts_with("HTTP/1.") || words.next().is_some() {
            return Err(Refused::Bad(400, "a bad request line"));
        }
        let mut head = Head {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
        };
        loop {
            let line = self.line(self.limits.line_bytes)?;
            if line.is_empty() {
                return Ok(Some(head));
            }
            if head.headers.len() == self.limits.headers {
                return Err(Refused::Bad(431, "too many headers"));
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(Refused::Bad(400, "a header without a colon"));
            };
            if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
                return Err(Refused::Bad(400, "a bad header name"));
            }
            head.headers
                .push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }

    /// The body `head` announces, at most [`Limits::body_bytes`]. With
    /// `Expect: 100-continue` the client is told to go on only when the
    /// announced length fits.
    pub fn body(&mut self, head: &Head, writer: &mut impl Write) -> Result<Vec<u8>, Refused> {
        let chunked = match head.header("transfer-encoding") {
            None => false,
            Some(value) if value.eq_ignore_ascii_case("chunked") => true,
            Some(_) => return Err(Refused::Bad(501, "a transfer encoding other than chunked")),
        };
        let length = match head.header("content-length") {
            Some(_) if chunked => None,
            Some(value) => Some(decimal(value).ok_or(Refused::Bad(400, "a bad Content-Length"))?),
            None => None,
        };
        if length.is_some_and(|length| length > self.limits.body_bytes) {
            return Err(Refused::TooLarge);
        }
        if head
            .header("expect")
            .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
        {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            writer.flush()?;
        }
        match (chunked, length) {
            (true, _) => self.chunked(),
            (false, Some(length)) => self.exactly(length),
            (false, None) => Ok(Vec::new()),
        }
    }

    fn chunked(&mut self) -> Result<Vec<u8>, Refused> {
        let mut body = Vec::new();
        loop {
            let line = self.line(self.limits.line_bytes)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            // 16 hex digits fill a u64; more cannot be a size we take.
            if size.is_empty() || size.len() > 16 {
                return Err(Refused::Bad(400, "a bad chunk size"));
            }
            let size = u64::from_str_radix(size, 16).map_err(|_| Refused::Bad(400, "a bad chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                for _ in 0..=self.limits.headers {
                    if self.line(self.limits.line_bytes)?.is_empty() {
                        return Ok(body);
                    }
                }
                return Err(Refused::Bad(431, "too many trailers"));
            }
            let total = (body.len() as u64).checked_add(size);
            if total.is_none_or(|total| total > self.limits.body_bytes) {
                return Err(Refused::TooLarge);
            }
            body.extend(self.exactly(size)?);
            if !self.line(self.limits.line_bytes)?.is_empty() {
                return Err(Refused::Bad(400, "a chunk longer than its size"));
            }
        }
    }

    /// `length` bytes, read as they come (never allocated ahead).
    fn exactly(&mut self, length: u64) -> Result<Vec<u8>, Refused> {
        let mut bytes = Vec::new();
        (&mut self.inner).take(length).read_to_end(&mut bytes)?;
        if bytes.len() as u64 != length {
            return Err(Refused::Gone);
        }
        Ok(bytes)
    }

    /// One line without its CRLF (or LF), at most `most` bytes.
    fn line(&mut self, most: usize) -> Result<String, Refused> {
        let mut bytes = Vec::new();
        (&mut self.inner)
            .take(most as u64 + 2)
            .read_until(b'\n', &mut bytes)?;
        if bytes.last() != Some(&b'\n') {
            return Err(if bytes.len() > most {
                Refused::Bad(431, "a line too long")
            } else {
                Refused::Gone
            });
        }
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > most {
            return Err(Refused::Bad(431, "a line too long"));
        }
        String::from_utf8(bytes).map_err(|_| Refused::Bad(400, "a line that is not UTF-8"))
    }
}

/// A Content-Length: digits only, and it fits in a u64.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Writes one answer: head and body in a single write (two segments would
/// wait on the peer's delayed acknowledgement, tens of milliseconds each).
pub fn respond(
    writer: &mut impl Write,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Not Found",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    writer.write_all(&message)?;
    writer.flush()
}

/// Answers a request that is not served, then the connection closes.
pub fn refuse(writer: &mut TcpStream, refused: Refused) -> anyhow::Result<()> {
    let (status, why) = match refused {
        Refused::Gone => return Ok(()),
        Refused::Bad(status, why) => (status, why.to_string()),
        Refused::TooLarge => (
            413,
            format!(
                "Exceeded maximum allowed payload size ({} bytes).",
                facts::MAX_SYNC_RESPONSE_BYTES
            ),
        ),
    };
    let body = serde_json::json!({ "errorMessage": why });
    respond(writer, status, &[], body.to_string().as_bytes())?;
    linger(writer);
    Ok(())
}

/// Closes our side, then reads (a bounded amount, for a bounded time)
/// what the client is still sending: closing a socket with unread input
/// resets the connection, and the client would lose the answer.
pub fn linger(stream: &mut TcpStream) {
    const MOST: u64 = 1 << 20;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = io::copy(&mut (&mut *stream).take(MOST), &mut io::sink());
}
