//! Test doubles for the gateway's parts: functions that answer what a test
//! says and record every call, so a test can tell that a function was not
//! asked, and requests built in one line.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::http::{Functions, HttpRequest, Invoked};

/// One call a [`Fake`] received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: String,
    pub request_id: String,
    pub event: Value,
    pub timeout: Duration,
}

/// Functions that answer from a table, the same answer every time.
#[derive(Default)]
pub struct Fake {
    answers: HashMap<String, Invoked>,
    calls: Mutex<Vec<Call>>,
}

impl Fake {
    pub fn answering(mut self, function: &str, invoked: Invoked) -> Fake {
        self.answers.insert(function.into(), invoked);
        self
    }

    /// `function` returns `answer` as its JSON response.
    pub fn returning(self, function: &str, answer: Value) -> Fake {
        self.answering(function, Invoked::Answer(answer.to_string().into_bytes()))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn called(&self) -> Vec<String> {
        self.calls().into_iter().map(|call| call.function).collect()
    }
}

impl Functions for Fake {
    fn invoke(&self, function: &str, request_id: &str, event: &[u8], timeout: Duration) -> Invoked {
        self.calls.lock().unwrap().push(Call {
            function: function.into(),
            request_id: request_id.into(),
            event: serde_json::from_slice(event).expect("events are JSON"),
            timeout,
        });
        self.answers
            .get(function)
            .cloned()
            .unwrap_or_else(|| Invoked::Failed {
                error_type: "Fake.NoAnswer".into(),
                message: format!("the test gave `{function}` no answer"),
            })
    }
}

/// A request from 192.0.2.7 to port 3000; `headers` as the client sent them.
pub fn http(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    HttpRequest {
        method: method.into(),
        target: target.into(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        body: body.to_vec(),
        body_too_large: false,
        peer: "192.0.2.7".parse().unwrap(),
        port: 3000,
    }
}
