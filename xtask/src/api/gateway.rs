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
    /// Why API Gateway answered with an error of its own, when the client
    /// is not told (a malformed answer, a failed authorizer): for the log.
    pub problem: Option<String>,
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
        let (mut sent, mut problem) = (Vec::new(), None);
        let (mut response, route) = self.answer(http, stamp, functions, &mut sent, &mut problem);
        response
            .headers
            .push(("apigw-requestid".into(), stamp.request_id.clone()));
        Handled {
            response,
            route,
            sent,
            problem,
        }
    }

    fn answer(
        &self,
        http: &HttpRequest,
        stamp: &Stamp,
        functions: &dyn Functions,
        sent: &mut Vec<Sent>,
        problem: &mut Option<String>,
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
            Ok(authorized) => match self.integrate(&incoming, authorized.as_ref(), functions, sent) {
                Ok(response) => response,
                Err((refusal, why)) => {
                    *problem = Some(why);
                    refusal.response()
                }
            },
            Err((refusal, why)) => {
                *problem = why;
                refusal.response()
            }
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
    ) -> Result<Option<Authorized>, (Refusal, Option<String>)> {
        if !selected.route.authorize {
            return Ok(None);
        }
        // An authorized route without an authorizer is refused by the
        // configuration; were it not, the route stays closed.
        let Some(gatekeeper) = self.gatekeeper.as_ref() else {
            let why = "the route is authorized but the API has no authorizer".to_string();
            return Err((Refusal::AuthorizerFailed, Some(why)));
        };
        match gatekeeper.decide(incoming, functions, sent) {
            Verdict::Allowed(authorized) => Ok(Some(authorized)),
            Verdict::Unauthorized => Err((Refusal::Unauthorized, None)),
            Verdict::Forbidden => Err((Refusal::Forbidden, None)),
            Verdict::Failed(why) => Err((Refusal::AuthorizerFailed, Some(why))),
        }
    }

    fn integrate(
        &self,
        incoming: &Incoming,
        authorized: Option<&Authorized>,
        functions: &dyn Functions,
        sent: &mut Vec<Sent>,
    ) -> Result<HttpResponse, (Refusal, String)> {
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
                .map_err(|why| (Refusal::IntegrationFailed, format!("`{function}`: {why}"))),
            Invoked::Failed { error_type, message } => Err((
                Refusal::IntegrationFailed,
                format!("`{function}`: {error_type}: {message}"),
            )),
            Invoked::TimedOut => Err((
                Refusal::TimedOut,
                format!("`{function}` did not answer within {} s", timeout.as_secs()),
            )),
            Invoked::Throttled => Err((
                Refusal::Throttled,
                format!("`{function}` is at its reserved concurrency"),
            )),
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
