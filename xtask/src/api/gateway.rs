//! PLACEHOLDER until the gateway lands: the interface of the spec only.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::api::Api;

pub struct HttpRequest {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_too_large: bool,
    pub peer: std::net::IpAddr,
    pub port: u16,
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub enum Invoked {
    Answer(Vec<u8>),
    Failed { error_type: String, message: String },
    TimedOut,
    Throttled,
}

pub trait Functions: Sync {
    fn invoke(&self, function: &str, request_id: &str, event: &[u8], timeout: Duration) -> Invoked;
}

pub struct Stamp {
    pub request_id: String,
    pub epoch_ms: u64,
}

pub struct Sent {
    pub function: String,
    pub event: Vec<u8>,
}

pub struct Handled {
    pub response: HttpResponse,
    pub route: Option<String>,
    pub sent: Vec<Sent>,
}

pub struct Gateway {
    routes: Vec<(String, String)>,
}

impl Gateway {
    pub fn new(api: &Api, _timeouts: &BTreeMap<String, Duration>) -> Gateway {
        Gateway {
            routes: api
                .routes
                .iter()
                .map(|r| (r.key.to_string(), r.function.clone()))
                .collect(),
        }
    }

    pub fn handle(&self, request: &HttpRequest, stamp: &Stamp, functions: &dyn Functions) -> Handled {
        let path = request.target.split('?').next().unwrap_or_default();
        let key = format!("{} {}", request.method, path);
        let Some((route, function)) = self.routes.iter().find(|(k, _)| *k == key) else {
            return Handled {
                response: HttpResponse {
                    status: 404,
                    headers: vec![],
                    body: b"{\"message\":\"Not Found\"}".to_vec(),
                },
                route: None,
                sent: vec![],
            };
        };
        let event = b"{}".to_vec();
        let response = match functions.invoke(function, &stamp.request_id, &event, Duration::from_secs(30)) {
            Invoked::Answer(body) => HttpResponse {
                status: 200,
                headers: vec![],
                body,
            },
            _ => HttpResponse {
                status: 502,
                headers: vec![],
                body: vec![],
            },
        };
        Handled {
            response,
            route: Some(route.clone()),
            sent: vec![Sent {
                function: function.clone(),
                event,
            }],
        }
    }
}
