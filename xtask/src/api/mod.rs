//! The API wing: the HTTP API of `[workspace.metadata.lambda]` answered on
//! this machine as API Gateway answers it, in front of functions run as
//! Lambda runs them. Imports the local Lambda wing, configuration and the
//! ground floor.

mod authorizer;
mod event;
#[cfg(test)]
mod fake;
pub mod gateway;
mod http;
mod policy;
mod request;
mod response;
mod routes;
