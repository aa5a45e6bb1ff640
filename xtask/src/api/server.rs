//! The HTTP/1.1 server of `serve`, on 127.0.0.1: each request read whole
//! (at most API Gateway's payload limit), handed to the gateway of the
//! current generation of the build, and answered. A reload replaces the
//! generation between two requests: a request is answered entirely by one
//! generation, never by a half-built one.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

use super::gateway::{Gateway, HttpRequest, HttpResponse, Stamp};
use super::pool::Pools;
use crate::facts;
use crate::ground::atomic;

/// A client has this long to send a request's head (method, target and
/// headers): a connection that trickles it is closed.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The most a request's head may take in memory: far above any browser's,
/// far below what would hurt.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One build's functions and the API in front of them.
pub struct Generation {
    /// Counts the builds served, from 1.
    pub number: usize,
    pub gateway: Gateway,
    pub pools: Pools,
}

/// The running server.
pub struct Server {
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

/// What every connection shares.
struct Shared {
    current: Arc<RwLock<Arc<Generation>>>,
    options: Options,
    port: u16,
}

impl Server {
    /// Listens on 127.0.0.1:`port` (0: a free port) and answers with
    /// `first` until [`Server::replace`] gives another generation.
    pub fn start(port: u16, first: Generation, options: Options) -> Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let current = Arc::new(RwLock::new(Arc::new(first)));
        let shared = Arc::new(Shared {
            current: Arc::clone(&current),
            options,
            port,
        });
        // Two threads take connections and read requests; a request waits
        // for its function on the runtime's blocking pool.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("serve")
            .enable_io()
            .enable_time()
            .build()
            .context("starting the HTTP server's threads")?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        thread::spawn(move || runtime.block_on(accept(listener, shared)));
        Ok(Server { current, port })
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

async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("serve: accepting a connection: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, peer, Arc::clone(&shared)));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                if !err.is_incomplete_message() {
                    eprintln!("serve: connection from {peer}: {err}");
                }
            }
        });
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

/// One request: read whole (at most the payload limit), handed to the
/// current generation's gateway on the blocking pool, answered.
async fn answer(
    request: hyper::Request<Incoming>,
    peer: SocketAddr,
    shared: Arc<Shared>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let limit = facts::HTTP_API_MAX_PAYLOAD_BYTES;
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let (body, body_too_large) = if declared.is_some_and(|length| length > limit) {
        (Vec::new(), true)
    } else {
        match Limited::new(body, limit as usize).collect().await {
            Ok(collected) => (collected.to_bytes().to_vec(), false),
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => (Vec::new(), true),
            Err(err) => return Ok(plain(400, &format!("reading the request's body: {err}"))),
        }
    };
    let incoming = HttpRequest {
        method: parts.method.as_str().to_string(),
        target: parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str())
            .to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect(),
        body,
        body_too_large,
        peer: peer.ip(),
        port: shared.port,
    };
    let handled = tokio::task::spawn_blocking(move || {
        let generation = shared.current.read().map(|g| Arc::clone(&g)).expect("generation");
        handle(&incoming, &generation, &shared.options, started)
    })
    .await;
    Ok(match handled {
        Ok(answer) => response(answer),
        Err(err) => plain(500, &format!("serve: a request's thread failed: {err}")),
    })
}

/// The gateway's answer, the events saved, the request logged.
fn handle(
    incoming: &HttpRequest,
    generation: &Generation,
    options: &Options,
    started: Instant,
) -> HttpResponse {
    let stamp = stamp();
    let handled = generation.gateway.handle(incoming, &stamp, &generation.pools);
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
    if let Some(problem) = &handled.problem {
        eprintln!("  ({}) {problem}", stamp.request_id);
    }
    handled.response
}

fn plain(status: u16, text: &str) -> hyper::Response<Full<Bytes>> {
    response(HttpResponse {
        status,
        headers: vec![("content-type".to_string(), "text/plain".to_string())],
        body: text.as_bytes().to_vec(),
    })
}

fn response(answer: HttpResponse) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    let headers = response.headers_mut();
    for (name, value) in &answer.headers {
        let parsed = hyper::header::HeaderName::from_bytes(name.as_bytes());
        match (parsed, hyper::header::HeaderValue::from_str(value)) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => eprintln!("serve: a header the function returned is not valid HTTP: {name:?}"),
        }
    }
    response
}
