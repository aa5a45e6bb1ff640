//! "serve: curl session": the example's API through `cargo xtask serve
//! --fakes` as its users call it, with the real `curl` (and Python's
//! `urllib.request` for some of the same requests, a second client):
//! tokens in the header and in the cookie, the authorizer's refusals,
//! ownership, malformed bodies, CORS preflights, an unknown path and a
//! body over API Gateway's payload limit, each answered with its status.

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use xshell::Shell;

use xtask::config::Config;
use xtask::facts::HTTP_API_MAX_PAYLOAD_BYTES;
use xtask::python::installer::InstallerChoice;

use super::clients::{curl, urllib, Request, Tokens};
use super::process::{shorten, Serve};
use super::responses::Received;
use super::{fresh_dir, report_mismatches};

/// One request of the session and what must come back.
struct Check {
    name: &'static str,
    request: Request,
    status: u16,
    expect: Vec<Expect>,
    /// Sent with urllib.request too.
    urllib: bool,
}

/// What must come back besides the status (and an `apigw-requestid`).
enum Expect {
    Header(&'static str, String),
    NoHeader(&'static str),
    Body(&'static str),
    BodyHas(String),
}

pub fn curl_session(sh: &Shell, config: &Config, installer: InstallerChoice, xtask: &Path) -> Result<()> {
    let python = xtask::lambda::dev_env::python(sh, config, installer)?;
    let work = fresh_dir(config, "serve-session")?;
    let tokens = Tokens::sign(sh, &python, config)?;
    let checks = checks(&tokens, &work)?;

    let serve = Serve::start(sh, xtask, &[], &work.join("serve.log"))?;
    let started = Instant::now();
    let mut mismatches = Vec::new();
    let mut judge = |client: &str, check: &Check, received: &Received| {
        let found = differences(check, received);
        eprintln!(
            "ci: {client} {} {} ({}) -> {}{}",
            check.request.method,
            check.request.path,
            check.name,
            received.status,
            if found.is_empty() { "" } else { "  NOT AS EXPECTED" }
        );
        if !found.is_empty() {
            mismatches.push((format!("{client}: {}", check.name), found));
        }
    };
    for check in &checks {
        judge("curl", check, &curl(sh, &serve.url, &check.request)?);
    }
    let through_urllib: Vec<&Check> = checks.iter().filter(|check| check.urllib).collect();
    let requests: Vec<&Request> = through_urllib.iter().map(|check| &check.request).collect();
    let answers = urllib(sh, &python, &serve.url, &requests, &work)?;
    for (check, received) in through_urllib.iter().zip(&answers) {
        judge("urllib", check, received);
    }
    let seconds = started.elapsed().as_secs_f64();
    if !mismatches.is_empty() {
        eprintln!("ci: the end of serve's log:\n{}", serve.server.log_tail(15));
    }
    drop(serve);
    report_mismatches(
        "the curl session",
        checks.len() + through_urllib.len(),
        &mismatches,
    )?;
    eprintln!(
        "ci: {} requests with curl and {} with urllib answered as expected in {seconds:.1} s",
        checks.len(),
        through_urllib.len()
    );
    let _ = fs::remove_dir_all(&work);
    Ok(())
}

/// The session, with its bodies written under `work`.
fn checks(tokens: &Tokens, work: &Path) -> Result<Vec<Check>> {
    let bearer = |name: &str| -> Result<(&'static str, String)> {
        Ok(("authorization", format!("Bearer {}", tokens.get(name)?)))
    };
    let alice = bearer("alice")?;
    let (bob, dave, origin) = (
        tokens.get("bob_id")?,
        tokens.get("dave_id")?,
        tokens.get("allowed_origin")?,
    );
    let malformed = work.join("malformed.json");
    fs::write(&malformed, r#"{"email": "eve@example.com", "name": "#)?;
    let too_large = work.join("too-large.json");
    fs::write(&too_large, vec![b' '; HTTP_API_MAX_PAYLOAD_BYTES as usize + 1])?;

    let check = |name, method, path: &str, headers, status, expect| Check {
        name,
        request: Request {
            method,
            path: path.to_string(),
            headers,
            body: None,
        },
        status,
        expect,
        urllib: false,
    };
    let get = |name, path: &str, headers, status, expect| check(name, "GET", path, headers, status, expect);
    let forbidden = || vec![Expect::Body(r#"{"message":"Forbidden"}"#)];
    let preflight = |name, origin: &str, status, expect| {
        let headers = vec![
            ("origin", origin.to_string()),
            ("access-control-request-method", "GET".to_string()),
            ("access-control-request-headers", "authorization".to_string()),
        ];
        check(name, "OPTIONS", "/users", headers, status, expect)
    };
    let json_by_alice = |name, method, path: &str, body: &Path, status, expect| {
        let headers = vec![alice.clone(), ("content-type", "application/json".to_string())];
        let mut check = check(name, method, path, headers, status, expect);
        check.request.body = Some(body.to_path_buf());
        check
    };
    let also_urllib = |check: Check| Check {
        urllib: true,
        ..check
    };
    let not_valid_json = || vec![Expect::BodyHas("not valid JSON".into())];
    Ok(vec![
        also_urllib(get(
            "a valid bearer token",
            "/users",
            vec![alice.clone()],
            200,
            vec![Expect::BodyHas(bob.clone())],
        )),
        get(
            "the token in the access_token cookie",
            "/users",
            vec![(
                "cookie",
                format!("theme=dark; access_token={}", tokens.get("alice")?),
            )],
            200,
            vec![Expect::BodyHas(bob.clone())],
        ),
        also_urllib(get("no token", "/users", vec![], 403, forbidden())),
        get(
            "an expired token",
            "/users",
            vec![bearer("expired")?],
            403,
            forbidden(),
        ),
        get(
            "a token for another app client",
            "/users",
            vec![bearer("other_client")?],
            403,
            forbidden(),
        ),
        get(
            "an ID token",
            "/users",
            vec![bearer("id_token")?],
            403,
            forbidden(),
        ),
        get(
            "a member asking for another user",
            &format!("/users/{dave}"),
            vec![bearer("bob")?],
            403,
            vec![Expect::BodyHas("only an admins member".into())],
        ),
        get(
            "a member asking for themself",
            &format!("/users/{bob}"),
            vec![bearer("bob")?],
            200,
            vec![Expect::BodyHas("bob@example.com".into())],
        ),
        also_urllib(json_by_alice(
            "POST with malformed JSON",
            "POST",
            "/users",
            &malformed,
            400,
            not_valid_json(),
        )),
        json_by_alice(
            "PATCH with malformed JSON",
            "PATCH",
            &format!("/users/{bob}"),
            &malformed,
            400,
            not_valid_json(),
        ),
        also_urllib(preflight(
            "a preflight from the allowed origin",
            &origin,
            204,
            vec![
                Expect::Header("access-control-allow-origin", origin.clone()),
                Expect::Header("access-control-allow-credentials", "true".into()),
            ],
        )),
        preflight(
            "a preflight from another origin",
            "http://elsewhere.example",
            403,
            vec![Expect::NoHeader("access-control-allow-origin")],
        ),
        get(
            "an unknown path",
            "/nowhere",
            vec![],
            404,
            vec![Expect::Body(r#"{"message":"Not Found"}"#)],
        ),
        json_by_alice(
            "a body over 10 MB",
            "POST",
            "/users",
            &too_large,
            413,
            vec![Expect::Body(r#"{"message":"Request Entity Too Large"}"#)],
        ),
    ])
}

/// What differs from the check's expectations.
fn differences(check: &Check, received: &Received) -> Vec<String> {
    let mut found = Vec::new();
    if received.status != check.status {
        found.push(format!("status {}, not {}", received.status, check.status));
    }
    let header = |name: &str| {
        received
            .headers
            .iter()
            .find(|(other, _)| other.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    if header("apigw-requestid").is_none() {
        found.push("no apigw-requestid header".into());
    }
    let body = String::from_utf8_lossy(&received.body);
    for expect in &check.expect {
        match expect {
            Expect::Header(name, value) if header(name) != Some(value.as_str()) => {
                found.push(format!("header `{name}`: {:?}, not {value:?}", header(name)))
            }
            Expect::NoHeader(name) if header(name).is_some() => found.push(format!(
                "header `{name}`: {:?}, but none was expected",
                header(name)
            )),
            Expect::Body(text) if body != *text => {
                found.push(format!("body {:?}, not {text:?}", shorten(&body, 300)))
            }
            Expect::BodyHas(text) if !body.contains(text.as_str()) => {
                found.push(format!("body {:?} does not hold {text:?}", shorten(&body, 300)))
            }
            _ => {}
        }
    }
    found
}
