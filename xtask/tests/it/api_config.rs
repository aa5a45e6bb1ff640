//! The HTTP API of `Cargo.toml`: each function's `routes` and `authorize`,
//! `[api]` and its authorizer. A valid API reaches `dist/manifest.json`
//! whole; every rule API Gateway HTTP API would enforce at deploy time is
//! exit 2 here, one line naming the key and the fix.

use serde_json::json;

use crate::support::{App, Repo};

/// `hello` on the source layer `shared`, and `auth` on nothing: no
/// dependency layer, so `package` builds every product and writes the
/// manifest.
fn app() -> App {
    App::standard()
        .without("layers.core")
        .function("hello", "hello.lambda_handler", &["shared"])
        .function("auth", "auth.lambda_handler", &[])
}

fn repo(app: &App) -> Repo {
    let repo = app.repo();
    repo.write(
        "lambdas/auth/auth.py",
        "def lambda_handler(event, context):\n    return {'isAuthorized': True}\n",
    );
    repo
}

/// `app()` with an authorizer (`auth`, API Gateway's defaults otherwise).
fn with_authorizer() -> App {
    app().section("api.authorizer", &["function = \"auth\""])
}

#[test]
fn the_manifest_carries_the_api() {
    let app = app()
        .key(
            "functions.hello",
            r#"routes = ["GET /hello/{name}", "ANY /{proxy+}", { key = "GET /health", authorize = false }, "$default"]"#,
        )
        .key("functions.hello", "authorize = true")
        .key("functions.auth", r#"routes = ["POST /login", { key = "GET /", authorize = true }]"#)
        .section("api", &["payload_format = \"1.0\""])
        .section(
            "api.authorizer",
            &[
                "function = \"auth\"",
                r#"identity_sources = ["$request.header.Authorization", "$request.querystring.token"]"#,
                "result_ttl = 300",
            ],
        );
    let repo = repo(&app);
    repo.xtask(&["package", "--builder", "host"]).success();
    let manifest = repo.manifest();
    assert_eq!(
        manifest["api"],
        json!({
            "payload_format_version": "1.0",
            "routes": {
                "$default": {"function": "hello", "authorize": true},
                "ANY /{proxy+}": {"function": "hello", "authorize": true},
                "GET /": {"function": "auth", "authorize": true},
                "GET /health": {"function": "hello", "authorize": false},
                "GET /hello/{name}": {"function": "hello", "authorize": true},
                "POST /login": {"function": "auth", "authorize": false},
            },
            "authorizer": {
                "function": "auth",
                "payload_format_version": "2.0",
                "enable_simple_responses": false,
                "identity_sources": ["$request.header.Authorization", "$request.querystring.token"],
                "result_ttl_in_seconds": 300,
            },
        })
    );
    // Sorted by key in the file too, as every map of the manifest.
    let text = String::from_utf8(repo.read("dist/manifest.json")).unwrap();
    let at = |key: &str| {
        text.find(&format!("\"{key}\": {{"))
            .unwrap_or_else(|| panic!("{key}"))
    };
    assert!(at("$default") < at("ANY /{proxy+}") && at("GET /health") < at("POST /login"));
}

#[test]
fn an_authorizer_keeps_api_gateways_defaults_and_simple_responses_with_2_0() {
    let repo = repo(
        &with_authorizer()
            .key("functions.hello", r#"routes = ["GET /hello"]"#)
            .key("functions.hello", "authorize = true"),
    );
    repo.xtask(&["package", "--builder", "host"]).success();
    assert_eq!(
        repo.manifest()["api"],
        json!({
            "payload_format_version": "2.0",
            "routes": {"GET /hello": {"function": "hello", "authorize": true}},
            "authorizer": {
                "function": "auth",
                "payload_format_version": "2.0",
                "enable_simple_responses": false,
                "identity_sources": ["$request.header.Authorization"],
                "result_ttl_in_seconds": 0,
            },
        })
    );
    let simple = with_authorizer().key("api.authorizer", "response = \"simple\"");
    let repo = self::repo(&simple);
    repo.xtask(&["package", "--builder", "host"]).success();
    assert_eq!(
        repo.manifest()["api"]["authorizer"]["enable_simple_responses"],
        true
    );
}

#[test]
fn a_repository_without_routes_has_an_api_without_routes() {
    let repo = repo(&app());
    repo.xtask(&["package", "--builder", "host"]).success();
    assert_eq!(
        repo.manifest()["api"],
        json!({"payload_format_version": "2.0", "routes": {}, "authorizer": null})
    );
}

#[test]
fn each_api_rule_is_a_usage_error_naming_the_key() {
    const FUNCTIONS: &str = "workspace.metadata.lambda.functions";
    const API: &str = "workspace.metadata.lambda.api";
    let routes = |hello: &str| app().key("functions.hello", &format!("routes = {hello}"));
    let both = |hello: &str, auth: &str| routes(hello).key("functions.auth", &format!("routes = {auth}"));
    let authorizer = |line: &str| with_authorizer().key("api.authorizer", line);
    let cases: Vec<(&str, App, String)> = vec![
        (
            "a method API Gateway does not know",
            routes(r#"["FETCH /hello"]"#),
            format!("{FUNCTIONS}.hello.routes: `FETCH /hello`: unknown method `FETCH` (use one of: ANY, DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT)"),
        ),
        (
            "a method in lower case",
            routes(r#"["get /hello"]"#),
            format!("{FUNCTIONS}.hello.routes: `get /hello`: API Gateway takes the method in upper case: `GET`"),
        ),
        (
            "a path without its leading slash",
            routes(r#"["GET hello"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET hello`: the path must start with `/`"),
        ),
        (
            "a greedy parameter before the last segment",
            routes(r#"["GET /{proxy+}/x"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /{{proxy+}}/x`: the greedy `{{proxy+}}` matches the rest of the path, so it must be the last segment"),
        ),
        (
            "a parameter twice",
            routes(r#"["GET /{a}/b/{a}"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /{{a}}/b/{{a}}`: the parameter `a` appears twice"),
        ),
        (
            "text around a parameter",
            routes(r#"["GET /files/{name}.json"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /files/{{name}}.json`: `{{name}}.json`: a parameter is a whole segment"),
        ),
        (
            "a trailing slash",
            routes(r#"["GET /hello/"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /hello/`: an empty segment"),
        ),
        (
            "a route listed twice by one function",
            routes(r#"["GET /hello", "GET /hello"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /hello` is listed twice"),
        ),
        (
            "one route key for two functions",
            both(r#"["GET /x"]"#, r#"["POST /x", "GET /x"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /x` is also a route of `auth`: a route sends its requests to one function"),
        ),
        (
            "two keys no request tells apart",
            both(r#"["GET /u/{id}"]"#, r#"["GET /u/{user_id}"]"#),
            format!("{FUNCTIONS}.hello.routes: `GET /u/{{id}}` matches the same requests as `GET /u/{{user_id}}` (function `auth`): no request could tell them apart"),
        ),
        (
            "routes that are not a list",
            routes(r#""GET /hello""#),
            format!("{FUNCTIONS}.hello.routes: expected a list, found \"GET /hello\""),
        ),
        (
            "a route that is neither a key nor a table",
            routes("[3]"),
            format!("{FUNCTIONS}.hello.routes: expected a route key or {{ key = \"GET /health\", authorize = false }}, found 3"),
        ),
        (
            "a route table without its key",
            routes("[{ authorize = false }]"),
            format!("{FUNCTIONS}.hello.routes[0].key: missing"),
        ),
        (
            "a bad key in a route table",
            routes(r#"["GET /a", { key = "GET /b/{x+}/c" }]"#),
            format!("{FUNCTIONS}.hello.routes[1].key: `GET /b/{{x+}}/c`: the greedy `{{x+}}`"),
        ),
        (
            "an unknown key in a route table",
            routes(r#"[{ key = "GET /hello", auth = true }]"#),
            format!("{FUNCTIONS}.hello.routes[0].auth: unknown key"),
        ),
        (
            "authorize without an authorizer",
            routes(r#"["GET /hello"]"#).key("functions.hello", "authorize = true"),
            format!("{FUNCTIONS}.hello.authorize: `GET /hello` would go through the authorizer, and there is none (add [{API}.authorizer], or set authorize = false)"),
        ),
        (
            "a route's own authorize without an authorizer",
            routes(r#"["GET /a", { key = "GET /b", authorize = true }]"#),
            format!("{FUNCTIONS}.hello.routes[1].authorize: `GET /b` would go through the authorizer, and there is none"),
        ),
        (
            "an authorizer naming a function that does not exist",
            app().section("api.authorizer", &["function = \"nope\""]),
            format!("{API}.authorizer.function: unknown function `nope` (define [{FUNCTIONS}.nope] or use one of: auth, hello)"),
        ),
        (
            "an authorizer without its function",
            app().section("api.authorizer", &["result_ttl = 0"]),
            format!("{API}.authorizer.function: missing"),
        ),
        (
            "simple responses with payload format 1.0",
            authorizer("payload_format = \"1.0\"").key("api.authorizer", "response = \"simple\""),
            format!("{API}.authorizer.response: simple responses exist only with payload format 2.0 (set payload_format = \"2.0\", or response = \"iam\")"),
        ),
        (
            "an unknown response",
            authorizer("response = \"policy\""),
            format!("{API}.authorizer.response: unknown response `policy` (use iam"),
        ),
        (
            "a cache without identity sources",
            authorizer("identity_sources = []").key("api.authorizer", "result_ttl = 60"),
            format!("{API}.authorizer.result_ttl: API Gateway caches an answer by its identity sources, and there are none (set result_ttl = 0, or name identity_sources)"),
        ),
        (
            "a cache longer than an hour",
            authorizer("result_ttl = 3601"),
            format!("{API}.authorizer.result_ttl: 3601 s is more than the 3600 s API Gateway caches an authorizer's answer"),
        ),
        (
            "a ttl that is not a whole number",
            authorizer("result_ttl = \"5 min\""),
            format!("{API}.authorizer.result_ttl: expected a whole number, found \"5 min\" (e.g. result_ttl = 300)"),
        ),
        (
            "an identity source that names nothing API Gateway knows",
            authorizer(r#"identity_sources = ["Authorization"]"#),
            format!("{API}.authorizer.identity_sources: `Authorization` is not an identity source (use $request.header.NAME"),
        ),
        (
            "an identity source without its name",
            authorizer(r#"identity_sources = ["$request.header."]"#),
            format!("{API}.authorizer.identity_sources: `$request.header.` is not an identity source"),
        ),
        (
            "an unknown key in the authorizer",
            authorizer("ttl = 5"),
            format!("{API}.authorizer.ttl: unknown key (remove it or check its spelling)"),
        ),
        (
            "an unknown key under api",
            app().section("api", &["cors = true"]),
            format!("{API}.cors: unknown key (remove it or check its spelling)"),
        ),
        (
            "an unknown payload format",
            app().section("api", &["payload_format = \"3.0\""]),
            format!("{API}.payload_format: unknown payload format `3.0` (use \"1.0\" or \"2.0\")"),
        ),
        (
            "a payload format that is not a string",
            authorizer("payload_format = 2.0"),
            format!("{API}.authorizer.payload_format: expected a string, found 2.0"),
        ),
        (
            "api that is not a table",
            app().setting("api = \"http\""),
            format!("{API}: expected a table"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, app, needle) in &cases {
        let repo = repo(app);
        let run = repo.xtask(&["package", "--dry-run"]);
        let stderr = run.stderr();
        if run.code() != 2 || !stderr.contains(needle.as_str()) || stderr.trim().lines().count() != 1 {
            failures.push(format!(
                "{name}: expected exit 2 and one line with {needle:?}\n  exit {}, stderr:\n{stderr}",
                run.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A configuration error empties `dist/`: the manifest of the routes that
/// stood before is gone, not deployed again.
#[test]
fn a_refused_route_removes_the_manifest_that_was() {
    let good = app().key("functions.hello", r#"routes = ["GET /hello"]"#);
    let repo = repo(&good);
    repo.xtask(&["package", "--builder", "host"]).success();
    assert!(repo.path().join("dist/manifest.json").exists());
    let bad = app().key("functions.hello", r#"routes = ["GET /hello/"]"#);
    repo.set_metadata(&bad.metadata());
    repo.xtask(&["package", "--builder", "host"])
        .fails_with(2, "functions.hello.routes: `GET /hello/`: an empty segment");
    assert!(!repo.path().join("dist/manifest.json").exists());
}
