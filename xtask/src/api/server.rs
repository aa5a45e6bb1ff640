//! The HTTP/1.1 server of `serve`, on 127.0.0.1: each request read whole
//! (at most API Gateway's payload limit), handed to the gateway of the
//! current generation of the build, and answered. A reload replaces the
//! generation between two requests: a request is answered entirely by one
//! generation, never by a half-built one.

use std::io::{Cursor, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};

use super::gateway::{Gateway, HttpRequest, HttpResponse, Stamp};
use super::pool::Pools;
use crate::atomic;
use crate::facts;

/// How many requests are handled at once (each waits for its function).
const WORKERS: usize = 32;

/// One build's functions and the API in front of them.
pub struct Generation {
    /// Counts the builds served, from 1.
    pub number: usize,
    pub gateway: Gateway,
    pub pools: Pools,
}

/// The running server.
pub struct Server {
    http: Arc<tiny_http::Server>,
    current: Arc<RwLock<Arc<Generation>>>,
    pub port: u16,
}

/// What the server does besides answering.
#[derive(Clone, Default)]
pub struct Options {
    /// Every event sent to a function is written here as
    /// `<requestId>.<n>.<function>.json` (the `apigw-requestid` header of
    /// the response names it).
    pub save_events: Option<PathBuf>,
}

impl Server {
    /// Listens on 127.0.0.1:`port` (0: a free port) and answers with
    /// `first` until [`Server::replace`] gives another generation.
    pub fn start(port: u16, first: Generation, options: Options) -> Result<Server> {
        let http = tiny_http::Server::http((Ipv4Addr::LOCALHOST, port))
            .map_err(|err| anyhow!("listening on 127.0.0.1:{port}: {err}"))?;
        let port = http.server_addr().to_ip().map_or(port, |address| address.port());
        let server = Server {
            http: Arc::new(http),
            current: Arc::new(RwLock::new(Arc::new(first))),
            port,
        };
        for _ in 0..WORKERS {
            let (http, current, options) = (
                Arc::clone(&server.http),
                Arc::clone(&server.current),
                options.clone(),
            );
            thread::spawn(move || {
                while let Ok(request) = http.recv() {
                    let generation = current.read().map(|g| Arc::clone(&g)).expect("generation");
                    answer(request, &generation, port, &options);
                }
            });
        }
        Ok(server)
    }

    /// The generation requests from now on are answered by; requests
    /// already under way finish with the one they started with.
    pub fn replace(&self, generation: Generation) {
        *self.current.write().expect("generation") = Arc::new(generation);
    }

    pub fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().expect("generation"))
    }
}

/// A request id as unique as API Gateway's within a run.
fn stamp() -> Stamp {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    Stamp {
        request_id: format!("{:x}{:06x}", epoch_ms / 1000, n % 0x100_0000),
        epoch_ms,
    }
}

fn answer(mut request: tiny_http::Request, generation: &Generation, port: u16, options: &Options) {
    let started = Instant::now();
    let (incoming, stamp) = (read(&mut request, port), stamp());
    let handled = generation.gateway.handle(&incoming, &stamp, &generation.pools);
    if let Some(dir) = &options.save_events {
        for (n, sent) in handled.sent.iter().enumerate() {
            let file = dir.join(format!("{}.{n}.{}.json", stamp.request_id, sent.function));
            if let Err(err) = atomic::write_atomic(&file, &sent.event) {
                eprintln!("serve: could not save the event in {}: {err:#}", file.display());
            }
        }
    }
    eprintln!(
        "{} {} -> {} {} {:.1} ms ({})",
        incoming.method,
        incoming.target,
        handled.response.status,
        handled.route.as_deref().unwrap_or("(no route)"),
        started.elapsed().as_secs_f64() * 1000.0,
        stamp.request_id,
    );
    if let Err(err) = request.respond(response(handled.response)) {
        eprintln!("serve: answering {}: {err}", stamp.request_id);
    }
}

/// The request as the gateway reads it; a body over the payload limit is
/// not read on.
fn read(request: &mut tiny_http::Request, port: u16) -> HttpRequest {
    let limit = facts::HTTP_API_MAX_PAYLOAD_BYTES;
    let declared_too_large = request.body_length().is_some_and(|length| length as u64 > limit);
    let mut body = Vec::new();
    let mut body_too_large = declared_too_large;
    if !declared_too_large {
        let read = request.as_reader().take(limit + 1).read_to_end(&mut body);
        body_too_large = read.is_ok() && body.len() as u64 > limit;
        if body_too_large {
            body.clear();
        }
    }
    HttpRequest {
        method: request.method().as_str().to_string(),
        target: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|header| {
                (
                    header.field.as_str().to_string(),
                    header.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
        body_too_large,
        peer: request
            .remote_addr()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |address| address.ip()),
        port,
    }
}

fn response(answer: HttpResponse) -> tiny_http::Response<Cursor<Vec<u8>>> {
    let length = answer.body.len();
    let mut headers = Vec::new();
    for (name, value) in &answer.headers {
        match tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            Ok(header) => headers.push(header),
            Err(()) => eprintln!("serve: a header the function returned is not valid HTTP: {name:?}"),
        }
    }
    tiny_http::Response::new(
        tiny_http::StatusCode(answer.status),
        headers,
        Cursor::new(answer.body),
        Some(length),
        None,
    )
}
