//! API Gateway's decisions for one request, as values: the payload limit,
//! the route, the authorizer, the integration's event and what its answer
//! becomes. No sockets and no processes: the server hands in the request,
//! the moment and the functions, and writes out the response, so every
//! answer API Gateway would give is tested here with fake functions.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::api::{Api, PayloadFormat, Route};
use crate::facts::{HTTP_API_MAX_INTEGRATION_TIMEOUT_S, HTTP_API_MAX_PAYLOAD_BYTES};

use super::authorizer::{Gatekeeper, Verdict};
use super::event::{self, Authorized, Incoming};
use super::request::Request;
use super::response::{self, Refusal};
use super::routes::{self, Selected};

pub use super::http::{Functions, HttpRequest, HttpResponse, Invoked, Sent, Stamp};

/// What the gateway did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub response: HttpResponse,
    /// The key of the route taken (`GET /users/{user_id}`, `$default`);
    /// `None` when none was (404, 413).
    pub route: Option<String>,
    /// Each event sent, the authorizer's first.
    pub sent: Vec<Sent>,
}

/// The API of `Cargo.toml` as API Gateway answers it. Shared by the
/// server's threads: the authorizer's cache is behind a lock.
pub struct Gateway {
    payload_format: PayloadFormat,
    routes: Vec<Route>,
    gatekeeper: Option<Gatekeeper>,
    /// Each function's timeout as API Gateway waits for it: at most 30 s.
    timeouts: BTreeMap<String, Duration>,
}

impl Gateway {
    /// `timeouts`: each function's own timeout, by name.
    pub fn new(api: &Api, timeouts: &BTreeMap<String, Duration>) -> Gateway {
        let limit = Duration::from_secs(HTTP_API_MAX_INTEGRATION_TIMEOUT_S);
        let timeouts: BTreeMap<String, Duration> = timeouts
            .iter()
            .map(|(function, timeout)| (function.clone(), (*timeout).min(limit)))
            .collect();
        let timeout_of = |function: &str| timeouts.get(function).copied().unwrap_or(limit);
        Gateway {
            payload_format: api.payload_format,
            routes: api.routes.clone(),
            gatekeeper: api
                .authorizer
                .as_ref()
                .map(|authorizer| Gatekeeper::new(authorizer, timeout_of(&authorizer.function))),
            timeouts,
        }
    }

    /// Answers `http` as API Gateway would, calling `functions` for the
    /// authorizer and the integration; `stamp` is the request's id and time.
    pub fn handle(&self, http: &HttpRequest, stamp: &Stamp, functions: &dyn Functions) -> Handled {
        let mut sent = Vec::new();
        let (mut response, route) = self.answer(http, stamp, functions, &mut sent);
        response
            .headers
            .push(("apigw-requestid".into(), stamp.request_id.clone()));
        Handled {
            response,
            route,
            sent,
        }
    }

    fn answer(
        &self,
        http: &HttpRequest,
        stamp: &Stamp,
        functions: &dyn Functions,
        sent: &mut Vec<Sent>,
    ) -> (HttpResponse, Option<String>) {
        if http.body_too_large || http.body.len() as u64 > HTTP_API_MAX_PAYLOAD_BYTES {
            return (Refusal::TooLarge.response(), None);
        }
        let request = Request::read(http);
        let Some(selected) = routes::select(&self.routes, request.method, request.raw_path) else {
            return (Refusal::NotFound.response(), None);
        };
        let route = Some(selected.route.key.to_string());
        let incoming = Incoming {
            request: &request,
            selected: &selected,
            stamp,
        };
        let response = match self.authorize(&selected, &incoming, functions, sent) {
            Ok(authorized) => self.integrate(&incoming, authorized.as_ref(), functions, sent),
            Err(refusal) => refusal.response(),
        };
        (response, route)
    }

    /// The authorizer's answer when the route asks for it; `Err` is the
    /// gateway's refusal (401, 403, 500).
    fn authorize(
        &self,
        selected: &Selected,
        incoming: &Incoming,
        functions: &dyn Functions,
        sent: &mut Vec<Sent>,
    ) -> Result<Option<Authorized>, Refusal> {
        if !selected.route.authorize {
            return Ok(None);
        }
        // An authorized route without an authorizer is refused by the
        // configuration; were it not, the route stays closed.
        let gatekeeper = self.gatekeeper.as_ref().ok_or(Refusal::AuthorizerFailed)?;
        match gatekeeper.decide(incoming, functions, sent) {
            Verdict::Allowed(authorized) => Ok(Some(authorized)),
            Verdict::Unauthorized => Err(Refusal::Unauthorized),
            Verdict::Forbidden => Err(Refusal::Forbidden),
            Verdict::Failed(_) => Err(Refusal::AuthorizerFailed),
        }
    }

    fn integrate(
        &self,
        incoming: &Incoming,
        authorized: Option<&Authorized>,
        functions: &dyn Functions,
        sent: &mut Vec<Sent>,
    ) -> HttpResponse {
        let function = &incoming.selected.route.function;
        let event = event::integration(self.payload_format, incoming, authorized)
            .to_string()
            .into_bytes();
        let timeout = self.timeout(function);
        let invoked = functions.invoke(function, &incoming.stamp.request_id, &event, timeout);
        sent.push(Sent {
            function: function.clone(),
            event,
        });
        match invoked {
            Invoked::Answer(answer) => response::from_function(self.payload_format, &answer)
                .unwrap_or_else(|_malformed| Refusal::IntegrationFailed.response()),
            Invoked::Failed { .. } => Refusal::IntegrationFailed.response(),
            Invoked::TimedOut => Refusal::TimedOut.response(),
            Invoked::Throttled => Refusal::Throttled.response(),
        }
    }

    /// How long API Gateway waits for `function`: the smaller of its own
    /// timeout and the integration limit.
    fn timeout(&self, function: &str) -> Duration {
        self.timeouts
            .get(function)
            .copied()
            .unwrap_or(Duration::from_secs(HTTP_API_MAX_INTEGRATION_TIMEOUT_S))
    }
}

#[cfg(test)]
mod tests;
