//! The API wing: the HTTP API of `[workspace.metadata.lambda]` answered on
//! this machine as API Gateway answers it, in front of functions run as
//! Lambda runs them. Imports the local Lambda wing, configuration and the
//! ground floor.
//!
//! - `gateway`: one request through API Gateway's steps, as values: read
//!   (`request`), routed (`routes`), authorized (`authorizer`, `policy`),
//!   turned into an event (`event`), answered (`response`); `http` holds
//!   the values it takes and gives;
//! - `pool`: warm execution environments per function;
//! - `generation`: one build's gateway and pools, reusing the unchanged;
//! - `server`: the HTTP/1.1 server on 127.0.0.1; `watch`: reload on save.

mod authorizer;
mod event;
#[cfg(test)]
mod fake;
pub mod gateway;
pub mod generation;
mod http;
mod policy;
pub mod pool;
mod request;
mod response;
mod routes;
pub mod server;
pub mod watch;
