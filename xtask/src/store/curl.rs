//! HTTP through `curl`, for the remote cache's S3 requests and the
//! container registries': curl gets its whole configuration (the URL, the
//! method, every header, the Authorization one too) on its standard input,
//! never on its command line, where `ps` shows it to every user. Every
//! answer is bounded by our own size and time limits, never by what the
//! remote says it will send.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// How long a connection may take before the remote counts as not answering.
const CONNECT_TIMEOUT_S: u64 = 5;
/// Every request may take this long, plus a second per 512 KiB our own
/// limit for it allows.
pub const BASE_TIMEOUT_S: u64 = 20;
/// A transfer slower than this many bytes a second for `STALL_S` ends.
const STALL_BYTES_PER_S: u64 = 1024;
const STALL_S: u64 = 10;
/// The most of an error answer (or of curl's own messages) that is read.
pub const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// No HTTP answer: curl's own reason.
    Unavailable(String),
    /// The answer was longer than our limit for it.
    TooLarge,
}

/// An HTTP answer: its status and the headers asked for (by lowercase
/// name, those the answer had).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
}

/// The time bound of a request that may carry `bytes`.
pub fn max_time(bytes: u64) -> u64 {
    BASE_TIMEOUT_S + bytes / (512 * 1024)
}

/// A value of curl's configuration file, in double quotes.
pub fn quoted(value: &str) -> String {
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

/// Runs curl with `config` on its standard input, copying the answer's
/// body into `sink` up to `limit` bytes (more ends the transfer): the HTTP
/// status, or why there was none.
pub fn run(config: &str, sink: &mut dyn Write, limit: u64, max_time_s: u64) -> Result<u16, Failure> {
    run_with_headers(config, sink, limit, max_time_s, &[]).map(|answer| answer.status)
}

/// As [`run`], also reading the headers named in `headers` (lowercase) of
/// the last answer (after any redirect curl was told to follow).
pub fn run_with_headers(
    config: &str,
    sink: &mut dyn Write,
    limit: u64,
    max_time_s: u64,
    headers: &[&str],
) -> Result<Answer, Failure> {
    let mut write_out = String::from("%{stderr}\n");
    for name in headers {
        write_out.push_str(&format!("header:{name}=%header{{{name}}}\n"));
    }
    write_out.push_str("http_code=%{http_code}\n");
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
        .args(["--output", "-", "--write-out", &write_out])
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
            .rfind(|line| !line.is_empty() && !is_write_out(line))
            .map(str::to_string)
            .unwrap_or_else(|| format!("curl exited with {exited:?}"));
        return Err(Failure::Unavailable(why));
    }
    let mut found = BTreeMap::new();
    for line in stderr.lines() {
        if let Some((name, value)) = line.strip_prefix("header:").and_then(|rest| rest.split_once('=')) {
            let value = value.trim();
            if headers.contains(&name) && !value.is_empty() {
                found.insert(name.to_string(), value.to_string());
            }
        }
    }
    Ok(Answer {
        status: code,
        headers: found,
    })
}

fn is_write_out(line: &str) -> bool {
    line.starts_with("http_code=") || line.starts_with("header:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_quoted_and_time_limits_follow_our_own_bounds() {
        assert_eq!(quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        // The layer ZIP's bound gives a finite time, whatever a meta claims.
        assert_eq!(max_time(crate::facts::MAX_UNZIPPED_BYTES), BASE_TIMEOUT_S + 500);
        assert_eq!(max_time(0), BASE_TIMEOUT_S);
    }
}
