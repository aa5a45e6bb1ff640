//! A Lambda Runtime API on 127.0.0.1, as the runtime interface client
//! (awslambdaric) expects it: `GET /2018-06-01/runtime/invocation/next`
//! hands out queued events, `POST …/invocation/{id}/response` and
//! `…/error` and `…/runtime/init/error` come back as [`Message`]s on a
//! channel, each with the moment it arrived. HTTP/1.1 with keep-alive,
//! `Content-Length` or chunked bodies, `Expect: 100-continue`, read within
//! bounds (`http.rs`). Only the runtime the tool started is served
//! (`peer.rs`); at most [`MAX_CONNECTIONS`] connections at once.

mod http;
mod peer;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::facts;
use http::{linger, refuse, respond, Head, Limits, Reader, Refused};
pub use peer::Peers;

const PREFIX: &str = "/2018-06-01/runtime";
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

/// The bounds of a request: a body as large as Lambda takes from a
/// function (its response or error), and 10 s for a request to arrive
/// whole once its first byte has.
const LIMITS: Limits = Limits {
    line_bytes: 8 * 1024,
    headers: 64,
    body_bytes: facts::MAX_SYNC_RESPONSE_BYTES,
    request_time: Duration::from_secs(10),
};

/// Connections served at once; more are closed as they come. The runtime
/// uses one or two.
pub const MAX_CONNECTIONS: usize = 16;

/// How long a connection waits for the runtime's process to be known
/// ([`RuntimeApi::admit`]) before it is refused: Lambda's init limit.
const ADMIT_WAIT: Duration = Duration::from_secs(facts::INIT_TIMEOUT_S);

/// How often a runtime waiting for work is checked for having gone away,
/// so that an event is never handed to a closed connection.
const GONE_CHECK: Duration = Duration::from_millis(50);

/// How many refused connections are reported as [`Message::Refused`].
const REFUSALS_TOLD: usize = 3;

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
    /// A connection not attributed to the runtime was refused: why.
    Refused(String),
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Invocation>,
    closed: bool,
}

struct Shared {
    address: SocketAddr,
    limits: Limits,
    queue: Mutex<Queue>,
    ready: Condvar,
    peers: Mutex<Option<Arc<Peers>>>,
    peers_known: Condvar,
    connections: AtomicUsize,
    refusals: AtomicUsize,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The server; it stops accepting work when dropped.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    messages: Receiver<Message>,
}

/// A connection's place under [`MAX_CONNECTIONS`], given back when dropped.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1; serves nobody until
    /// [`RuntimeApi::admit`] says who the runtime is.
    pub fn start() -> Result<RuntimeApi> {
        RuntimeApi::start_with(LIMITS, MAX_CONNECTIONS)
    }

    fn start_with(limits: Limits, most: usize) -> Result<RuntimeApi> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("listening on 127.0.0.1 for the Runtime API")?;
        let shared = Arc::new(Shared {
            address: listener.local_addr()?,
            limits,
            queue: Mutex::default(),
            ready: Condvar::new(),
            peers: Mutex::new(None),
            peers_known: Condvar::new(),
            connections: AtomicUsize::new(0),
            refusals: AtomicUsize::new(0),
        });
        let (sender, messages) = channel();
        let server = Arc::clone(&shared);
        thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || accept(listener, &server, &sender, most))
            .context("starting the Runtime API")?;
        Ok(RuntimeApi { shared, messages })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.shared.address.to_string()
    }

    /// Who may take and answer invocations: the runtime just started.
    pub fn admit(&self, peers: Peers) {
        let mut known = self
            .shared
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *known = Some(Arc::new(peers));
        self.shared.peers_known.notify_all();
    }

    pub fn push(&self, invocation: Invocation) {
        self.shared.queue().pending.push_back(invocation);
        self.shared.ready.notify_all();
    }

    /// The next message, or `None` after `wait`.
    pub fn receive(&self, wait: Duration) -> Option<Message> {
        self.messages.recv_timeout(wait).ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.ready.notify_all();
        // Wake the accept loop so that it sees `closed` and ends.
        let _ = TcpStream::connect(self.shared.address);
    }
}

fn accept(listener: TcpListener, shared: &Arc<Shared>, messages: &Sender<Message>, most: usize) {
    for stream in listener.incoming() {
        if shared.queue().closed {
            return;
        }
        let Ok(stream) = stream else {
            // Out of descriptors, say: let them be freed.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= most {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let slot = Slot(Arc::clone(shared));
        let sender = messages.clone();
        // A thread that cannot start drops its slot and its stream.
        let _ = thread::Builder::new().spawn(move || {
            let _ = serve(stream, &slot.0, &sender);
        });
    }
}

/// Where a request goes.
enum Route<'a> {
    Next,
    Response(&'a str),
    Error(&'a str),
    InitError,
    Unknown,
}

fn route(head: &Head) -> Route<'_> {
    let path = head.path.split('?').next().unwrap_or_default();
    let tail = path.strip_prefix(PREFIX).unwrap_or(path);
    let parts: Vec<&str> = tail.trim_start_matches('/').split('/').collect();
    match (head.method.as_str(), parts.as_slice()) {
        ("GET", ["invocation", "next"]) => Route::Next,
        ("POST", ["invocation", id, "response"]) => Route::Response(id),
        ("POST", ["invocation", id, "error"]) => Route::Error(id),
        ("POST", ["init", "error"]) => Route::InitError,
        _ => Route::Unknown,
    }
}

const ACCEPTED: &[u8] = br#"{"status":"OK"}"#;

/// Answers the requests of one connection until it closes, if it comes
/// from the runtime.
fn serve(stream: TcpStream, shared: &Shared, messages: &Sender<Message>) -> Result<()> {
    let mut writer = stream.try_clone()?;
    if let Err(why) = admitted(&stream, shared) {
        // The first few are told: a flood of strangers must not fill the
        // channel.
        if shared.refusals.fetch_add(1, Ordering::SeqCst) < REFUSALS_TOLD {
            let _ = messages.send(Message::Refused(why.clone()));
        }
        let body = serde_json::json!({ "errorMessage": format!("not the function's runtime: {why}") });
        respond(&mut writer, 403, &[], body.to_string().as_bytes())?;
        linger(&mut writer);
        return Ok(());
    }
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(shared.limits.request_time))?;
    let probe = stream.try_clone()?;
    let mut reader = Reader::new(stream, shared.limits);
    loop {
        let head = match reader.head() {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(()),
            Err(refused) => return refuse(&mut writer, refused),
        };
        let at = Instant::now();
        let body = match reader.body(&head, &mut writer) {
            Ok(body) => body,
            Err(Refused::TooLarge) => {
                too_large(route(&head), messages);
                return refuse(&mut writer, Refused::TooLarge);
            }
            Err(refused) => return refuse(&mut writer, refused),
        };
        let error_type = || head.header(ERROR_TYPE_HEADER).unwrap_or_default().to_string();
        match route(&head) {
            Route::Next => {
                let _ = messages.send(Message::Next(at));
                let Some(invocation) = wait_for_work(shared, &probe) else {
                    return Ok(());
                };
                let (status, headers) = (200, event_headers(&invocation));
                respond(&mut writer, status, &headers, &invocation.body)?;
            }
            Route::Response(id) => {
                let request_id = id.to_string();
                let _ = messages.send(Message::Response { request_id, body });
                respond(&mut writer, 202, &[], ACCEPTED)?;
            }
            Route::Error(id) => {
                let (request_id, error_type) = (id.to_string(), error_type());
                let _ = messages.send(Message::Error {
                    request_id,
                    error_type,
                    body,
                });
                respond(&mut writer, 202, &[], ACCEPTED)?;
            }
            Route::InitError => {
                let error_type = error_type();
                let _ = messages.send(Message::InitError { error_type, body });
                respond(&mut writer, 202, &[], ACCEPTED)?;
            }
            Route::Unknown => respond(&mut writer, 404, &[], br#"{"errorMessage":"unknown path"}"#)?,
        }
    }
}

/// Whether the peer of `stream` is the runtime, once it is known.
fn admitted(stream: &TcpStream, shared: &Shared) -> Result<(), String> {
    let peer = stream.peer_addr().map_err(|err| err.to_string())?;
    let guard = shared.peers.lock().map_err(|_| "poisoned".to_string())?;
    let (guard, _) = shared
        .peers_known
        .wait_timeout_while(guard, ADMIT_WAIT, |peers| peers.is_none())
        .map_err(|_| "poisoned".to_string())?;
    let peers = guard.clone().ok_or("no runtime was started")?;
    drop(guard);
    peers.admit(peer, shared.address)
}

/// A response or error over Lambda's limit ends the invocation as Lambda
/// ends it: `Function.ResponseSizeTooLarge`.
fn too_large(route: Route, messages: &Sender<Message>) {
    let body = serde_json::json!({
        "errorType": facts::RESPONSE_TOO_LARGE,
        "errorMessage": format!(
            "Response payload size exceeded maximum allowed payload size ({} bytes).",
            facts::MAX_SYNC_RESPONSE_BYTES
        ),
    })
    .to_string()
    .into_bytes();
    let error_type = facts::RESPONSE_TOO_LARGE.to_string();
    let _ = messages.send(match route {
        Route::Response(id) | Route::Error(id) => Message::Error {
            request_id: id.to_string(),
            error_type,
            body,
        },
        Route::InitError => Message::InitError { error_type, body },
        Route::Next | Route::Unknown => return,
    });
}

fn event_headers(invocation: &Invocation) -> Vec<(&'static str, String)> {
    let deadline = SystemTime::now() + invocation.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    vec![
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
    ]
}

/// Blocks until an invocation is queued; `None` once the server stops or
/// the runtime's connection has closed (its event stays queued).
fn wait_for_work(shared: &Shared, probe: &TcpStream) -> Option<Invocation> {
    let mut queue = shared.queue();
    loop {
        if queue.closed {
            return None;
        }
        if let Some(invocation) = queue.pending.pop_front() {
            return Some(invocation);
        }
        queue = match shared.ready.wait_timeout(queue, GONE_CHECK) {
            Ok((queue, _)) => queue,
            Err(poisoned) => poisoned.into_inner().0,
        };
        if gone(probe) {
            return None;
        }
    }
}

/// Whether the client closed its side: a read would see the end.
fn gone(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let seen = stream.peek(&mut [0u8; 1]);
    let _ = stream.set_nonblocking(false);
    match seen {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
    }
}
