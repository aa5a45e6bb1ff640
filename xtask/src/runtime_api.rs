//! A Lambda Runtime API on 127.0.0.1, as the runtime interface client
//! (awslambdaric) expects it: `GET /2018-06-01/runtime/invocation/next`
//! hands out queued events, `POST …/invocation/{id}/response` and
//! `…/error` and `…/runtime/init/error` come back as [`Message`]s on a
//! channel, each with the moment it arrived. HTTP/1.1 with keep-alive,
//! `Content-Length` or chunked bodies, `Expect: 100-continue`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

const PREFIX: &str = "/2018-06-01/runtime";
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

/// An event waiting for the runtime's next `GET …/next`.
pub struct Invocation {
    pub request_id: String,
    pub body: Vec<u8>,
    pub function_arn: String,
    pub timeout: Duration,
}

/// What the runtime said, when it said it.
#[derive(Debug)]
pub enum Message {
    /// The runtime asks for work: init is over (the first time) or the
    /// previous invocation is answered.
    Next(Instant),
    Response {
        request_id: String,
        body: Vec<u8>,
    },
    Error {
        request_id: String,
        error_type: String,
        body: Vec<u8>,
    },
    InitError {
        error_type: String,
        body: Vec<u8>,
    },
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Invocation>,
    closed: bool,
}

/// The server; it stops accepting work when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    queue: Arc<(Mutex<Queue>, Condvar)>,
    messages: Receiver<Message>,
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> Result<RuntimeApi> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("listening on 127.0.0.1 for the Runtime API")?;
        let address = listener.local_addr()?;
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let (sender, messages) = channel();
        let shared = Arc::clone(&queue);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if shared.0.lock().map(|queue| queue.closed).unwrap_or(true) {
                    return;
                }
                let (queue, sender) = (Arc::clone(&shared), sender.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &queue, &sender);
                });
            }
        });
        Ok(RuntimeApi {
            address,
            queue,
            messages,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    pub fn push(&self, invocation: Invocation) {
        let (lock, ready) = &*self.queue;
        lock.lock()
            .expect("runtime API queue")
            .pending
            .push_back(invocation);
        ready.notify_all();
    }

    /// The next message, or `None` after `wait`.
    pub fn receive(&self, wait: Duration) -> Option<Message> {
        self.messages.recv_timeout(wait).ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let (lock, ready) = &*self.queue;
        if let Ok(mut queue) = lock.lock() {
            queue.closed = true;
        }
        ready.notify_all();
        // Wake the accept loop so that it sees `closed` and ends.
        let _ = TcpStream::connect(self.address);
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Answers the requests of one connection until it closes.
fn serve(stream: TcpStream, queue: &(Mutex<Queue>, Condvar), messages: &Sender<Message>) -> Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader, &mut writer)? {
        let at = Instant::now();
        let path = request.path.split('?').next().unwrap_or_default();
        let tail = path.strip_prefix(PREFIX).unwrap_or(path);
        let parts: Vec<&str> = tail.trim_start_matches('/').split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["invocation", "next"]) => {
                let _ = messages.send(Message::Next(at));
                let Some(invocation) = wait_for_work(queue) else {
                    return Ok(());
                };
                let deadline = SystemTime::now() + invocation.timeout;
                let deadline_ms = deadline
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                let headers = [
                    ("Lambda-Runtime-Aws-Request-Id", invocation.request_id.clone()),
                    ("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string()),
                    (
                        "Lambda-Runtime-Invoked-Function-Arn",
                        invocation.function_arn.clone(),
                    ),
                    (
                        "Lambda-Runtime-Trace-Id",
                        format!(
                            "Root=1-00000000-{};Sampled=0",
                            invocation.request_id.replace('-', "")
                        ),
                    ),
                    ("Content-Type", "application/json".to_string()),
                ];
                respond(&mut writer, 200, &headers, &invocation.body)?;
            }
            ("POST", ["invocation", id, "response"]) => {
                let _ = messages.send(Message::Response {
                    request_id: id.to_string(),
                    body: request.body,
                });
                respond(&mut writer, 202, &[], br#"{"status":"OK"}"#)?;
            }
            ("POST", ["invocation", id, "error"]) => {
                let error_type = request.header(ERROR_TYPE_HEADER).unwrap_or_default().to_string();
                let _ = messages.send(Message::Error {
                    request_id: id.to_string(),
                    error_type,
                    body: request.body,
                });
                respond(&mut writer, 202, &[], br#"{"status":"OK"}"#)?;
            }
            ("POST", ["init", "error"]) => {
                let error_type = request.header(ERROR_TYPE_HEADER).unwrap_or_default().to_string();
                let _ = messages.send(Message::InitError {
                    error_type,
                    body: request.body,
                });
                respond(&mut writer, 202, &[], br#"{"status":"OK"}"#)?;
            }
            _ => respond(&mut writer, 404, &[], br#"{"errorMessage":"unknown path"}"#)?,
        }
    }
    Ok(())
}

/// Blocks until an invocation is queued; `None` once the server stops.
fn wait_for_work(queue: &(Mutex<Queue>, Condvar)) -> Option<Invocation> {
    let (lock, ready) = queue;
    let mut guard = lock.lock().ok()?;
    loop {
        if guard.closed {
            return None;
        }
        if let Some(invocation) = guard.pending.pop_front() {
            return Some(invocation);
        }
        guard = ready.wait(guard).ok()?;
    }
}

/// One request, or `None` when the client closed the connection.
fn read_request(reader: &mut impl BufRead, writer: &mut impl Write) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let (Some(method), Some(path)) = (words.next(), words.next()) else {
        return Ok(None);
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("expect")
        .is_some_and(|value| value.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
    }
    if request
        .header("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(reader)?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length.parse().context("a bad Content-Length")?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
            .context("a bad chunk size")?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn respond(writer: &mut impl Write, status: u16, headers: &[(&str, String)], body: &[u8]) -> Result<()> {
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        _ => "Not Found",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    // One write: head and body in two segments would wait on the peer's
    // delayed acknowledgement (Nagle), tens of milliseconds per answer.
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    writer.write_all(&message)?;
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn exchange(stream: &mut TcpStream, request: &str) -> String {
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            head.push_str(&line);
            // An interim `100 Continue` is followed by the real answer.
            if line == "\r\n" && !head.ends_with("100 Continue\r\n\r\n") {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        head + &String::from_utf8(body).unwrap()
    }

    #[test]
    fn serves_an_event_and_takes_its_answer_on_one_connection() {
        let api = RuntimeApi::start().unwrap();
        api.push(Invocation {
            request_id: "r-1".into(),
            body: br#"{"x":1}"#.to_vec(),
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            timeout: Duration::from_secs(3),
        });
        let mut stream = TcpStream::connect(api.address()).unwrap();
        let next = exchange(
            &mut stream,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
        assert!(next.contains("Lambda-Runtime-Aws-Request-Id: r-1"), "{next}");
        assert!(next.ends_with(r#"{"x":1}"#), "{next}");
        assert!(matches!(
            api.receive(Duration::from_secs(5)),
            Some(Message::Next(_))
        ));
        // Chunked, with Expect: the shapes curl may use.
        let posted = exchange(
            &mut stream,
            "POST /2018-06-01/runtime/invocation/r-1/error HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nLambda-Runtime-Function-Error-Type: Runtime.Oops\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert!(
            posted.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202"),
            "{posted}"
        );
        match api.receive(Duration::from_secs(5)) {
            Some(Message::Error {
                request_id,
                error_type,
                body,
                ..
            }) => {
                assert_eq!(request_id, "r-1");
                assert_eq!(error_type, "Runtime.Oops");
                assert_eq!(body, b"abcde");
            }
            other => panic!("{other:?}"),
        }
        let unknown = exchange(&mut stream, "GET /elsewhere HTTP/1.1\r\n\r\n");
        assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    }
}
