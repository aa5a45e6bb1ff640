//! The values that cross the gateway's edges: the HTTP request the server
//! read, the response it writes, and what a function answered. They live
//! apart from `gateway.rs` so that its parts can name them without
//! importing the file that imports them; `gateway.rs` hands them on.

use std::net::IpAddr;
use std::time::Duration;

/// A request as the HTTP server read it, nothing interpreted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// `/path?query` exactly as sent, percent-encoding kept.
    pub target: String,
    /// In the order received, names as sent (the gateway lower-cases them).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server stopped reading a body over the payload limit: the gateway
    /// answers 413 without reading `body`.
    pub body_too_large: bool,
    pub peer: IpAddr,
    /// The port the server listens on (`x-forwarded-port`).
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What invoking a function came to, as far as API Gateway can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    /// The function returned: its response payload, as bytes.
    Answer(Vec<u8>),
    /// The function raised, or its runtime failed.
    Failed { error_type: String, message: String },
    /// The timeout passed to [`Functions::invoke`] ran out.
    TimedOut,
    /// No environment was free under the function's reserved concurrency.
    Throttled,
}

/// The functions behind the API, as the server runs them. A trait so that
/// the gateway's decisions are tested with a fake that records its calls.
pub trait Functions: Sync {
    /// Runs `function` on `event`, giving up after `timeout`: the smaller of
    /// API Gateway's integration limit and the function's own timeout.
    fn invoke(&self, function: &str, request_id: &str, event: &[u8], timeout: Duration) -> Invoked;
}

/// The request's id and the moment it arrived: passed in, so that events
/// and the authorizer cache's clock are the caller's and tests are exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub request_id: String,
    pub epoch_ms: u64,
}

/// One event the gateway sent a function, kept for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub function: String,
    pub event: Vec<u8>,
}
