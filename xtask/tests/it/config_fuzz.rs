//! A property test of the configuration reader: about three hundred
//! generated `[workspace.metadata.lambda]` tables, valid and invalid (wrong
//! types, unknown and missing keys, odd names and paths, huge sizes, bad
//! durations and handlers, impossible layer lists, odd routes and
//! authorizers), each run through
//! `build --dry-run` with and without `--json`. Whatever the table, the tool
//! exits 0 or 2 (a dry run builds nothing, so only its input can be wrong),
//! never panics, and explains an exit code 2 with an `error:` line; a size
//! or duration past Lambda's limits (or 64 bits) is always exit 2. The generator is a fixed-seed xorshift: every run sees the
//! same cases.

use std::fmt::Write as _;
use std::fs;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::support::Repo;

const CASES: usize = 300;
const SEED: u64 = 0x5eed_0fc0_ffee_0042;

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// A TOML value as the generator builds it.
#[derive(Clone, Debug)]
enum Value {
    Str(String),
    /// A literal written as is: numbers, floats, `inf`, booleans.
    Raw(String),
    List(Vec<Value>),
    Table(Vec<(String, Value)>),
}

fn s(text: &str) -> Value {
    Value::Str(text.to_string())
}

fn raw(text: &str) -> Value {
    Value::Raw(text.to_string())
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|item| s(item)).collect())
}

fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ch if ch.is_control() => {
                let _ = write!(out, "\\u{:04X}", ch as u32);
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if bare {
        name.to_string()
    } else {
        quote(name)
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Str(text) => quote(text),
        Value::Raw(text) => text.clone(),
        Value::List(items) => format!("[{}]", items.iter().map(inline).collect::<Vec<_>>().join(", ")),
        Value::Table(entries) => format!(
            "{{ {} }}",
            entries
                .iter()
                .map(|(name, value)| format!("{} = {}", key(name), inline(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The generated configuration: top-level keys, then the layer and
/// function tables (a non-table entry is written inline).
#[derive(Clone, Debug, Default)]
struct Config {
    top: Vec<(String, Value)>,
    layers: Vec<(String, Value)>,
    functions: Vec<(String, Value)>,
}

impl Config {
    fn toml(&self) -> String {
        let mut out = String::from("[workspace.metadata.lambda]\n");
        for (name, value) in &self.top {
            let _ = writeln!(out, "{} = {}", key(name), inline(value));
        }
        for (section, entries) in [("layers", &self.layers), ("functions", &self.functions)] {
            let (tables, others): (Vec<_>, Vec<_>) = entries
                .iter()
                .partition(|(_, value)| matches!(value, Value::Table(_)));
            if !others.is_empty() {
                let _ = writeln!(out, "\n[workspace.metadata.lambda.{section}]");
                for (name, value) in others {
                    let _ = writeln!(out, "{} = {}", key(name), inline(value));
                }
            }
            for (name, value) in tables {
                let _ = writeln!(out, "\n[workspace.metadata.lambda.{section}.{}]", key(name));
                if let Value::Table(fields) = value {
                    for (field, value) in fields {
                        let _ = writeln!(out, "{} = {}", key(field), inline(value));
                    }
                }
            }
        }
        out
    }

    fn layer_names(&self) -> Vec<String> {
        self.layers.iter().map(|(name, _)| name.clone()).collect()
    }
}

fn field<'a>(table: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    match table {
        Value::Table(fields) => fields
            .iter_mut()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value),
        _ => None,
    }
}

fn set(table: &mut Value, name: &str, value: Value) {
    if let Value::Table(fields) = table {
        match fields.iter_mut().find(|(field, _)| field == name) {
            Some(slot) => slot.1 = value,
            None => fields.push((name.to_string(), value)),
        }
    }
}

fn remove(table: &mut Value, name: &str) {
    if let Value::Table(fields) = table {
        fields.retain(|(field, _)| field != name);
    }
}

fn profile(name: &str) -> Value {
    Value::Table(vec![(
        "requirements".into(),
        s(&format!("layers/{name}/requirements.txt")),
    )])
}

fn function(rng: &mut Rng, name: &str, layers: &[String]) -> Value {
    let mut fields = vec![
        ("source".to_string(), s(&format!("lambdas/{name}"))),
        (
            "handler".to_string(),
            s(&format!("{name}_handler.lambda_handler")),
        ),
    ];
    let mut chosen: Vec<Value> = Vec::new();
    for layer in layers {
        if chosen.len() < 5 && rng.chance(50) {
            chosen.push(s(layer));
        }
    }
    fields.push(("layers".to_string(), Value::List(chosen)));
    if rng.chance(20) {
        fields.push(("budget".to_string(), s("40 MiB")));
    }
    if rng.chance(15) {
        fields.push(("bundle".to_string(), raw("true")));
    }
    if rng.chance(10) {
        fields.push(("allow".to_string(), list(&[".env.example"])));
    }
    if rng.chance(30) {
        let get = format!("GET /{name}/{{id}}");
        fields.push(("routes".to_string(), list(&[&get, &format!("POST /{name}")])));
    }
    Value::Table(fields)
}

/// A valid configuration to start from.
fn base(rng: &mut Rng) -> Config {
    let mut config = Config::default();
    config.top.push(("runtime".into(), s("python3.11")));
    config.top.push(("image".into(), s("xtask-no-such-image:never")));
    if rng.chance(40) {
        let arch = rng.pick(&["x86_64", "arm64"]);
        config.top.push(("architecture".into(), s(arch)));
    }
    if rng.chance(40) {
        let builder = rng.pick(&["auto", "host", "container"]);
        config.top.push(("builder".into(), s(builder)));
    }
    if rng.chance(30) {
        let bytecode = rng.pick(&["none", "checked-hash", "unchecked-hash"]);
        config.top.push(("bytecode".into(), s(bytecode)));
    }
    if rng.chance(30) {
        config.top.push(("budget".into(), s("50 MiB")));
    }
    if rng.chance(30) {
        config.top.push(("import_budget".into(), s("3 s")));
    }
    if rng.chance(20) {
        config.top.push(("exclude".into(), list(&["boto3", "botocore"])));
    }
    for name in ["core", "jwt", "extra"].iter().take(rng.below(4)) {
        config.layers.push((name.to_string(), profile(name)));
    }
    for name in ["shared", "common"].iter().take(rng.below(3)) {
        config.layers.push((
            name.to_string(),
            Value::Table(vec![("source".into(), s(&format!("lambdas/{name}")))]),
        ));
    }
    if rng.chance(20) {
        config.layers.push((
            "ext".into(),
            Value::Table(vec![
                (
                    "arn".into(),
                    s("arn:aws:lambda:us-east-1:123456789012:layer:ext:3"),
                ),
                ("unzipped_size".into(), s("10 MiB")),
            ]),
        ));
    }
    let layers = config.layer_names();
    for name in ["auth", "users", "cors", "orders"].iter().take(rng.below(5)) {
        let table = function(rng, name, &layers);
        config.functions.push((name.to_string(), table));
    }
    config
}

const ODD_NAMES: &[&str] = &[
    "a/b",
    "..",
    "../up",
    "with space",
    "ünïcödé",
    "名前",
    "",
    " ",
    "-",
    "_",
    "a.b",
    "CON",
    "x\ty",
    "a\"quote",
    "0123456789012345678901234567890123456789012345678901234567890123456789",
];

const ODD_PATHS: &[&str] = &[
    "../x",
    "/etc",
    "/etc/passwd",
    "lambdas/../../x",
    "lambdas/../lambdas/auth",
    "~/x",
    "",
    ".",
    "lambdas/does-not-exist",
    "Cargo.toml",
    "lambdas/ünï",
    "lambdas/with space",
    "./lambdas/auth",
    "lambdas//auth",
];

const ODD_HANDLERS: &[&str] = &[
    "a..b",
    ".x",
    "x.",
    "",
    "x",
    ".",
    "a.b.c",
    "1a.handler",
    "a b.handler",
    "ünï.handler",
    "a.1b",
    "a-b.handler",
    "a/b.handler",
    "a.b.",
];

const ODD_SIZES: &[&str] = &[
    "\"999999999999 GiB\"",
    "\"1e400 MiB\"",
    "\"-5 MiB\"",
    "-5",
    "1e400",
    "-1e400",
    "inf",
    "nan",
    "0",
    "\"0 B\"",
    "\"\"",
    "\"MiB\"",
    "\"1.5.5 MB\"",
    "\"18446744073709551615\"",
    "9223372036854775807",
    "\"inf MiB\"",
    "\"NaN GiB\"",
    "\"12 parsecs\"",
    "0.5",
    "true",
    "[\"50 MiB\"]",
    "\"251 MiB\"",
    "262144001",
    "\"99999999999999999999999 GiB\"",
];

const ODD_DURATIONS: &[&str] = &[
    "\"soon\"",
    "\"-1 s\"",
    "\"inf s\"",
    "\"NaN ms\"",
    "\"99999999999999999999 s\"",
    "\"1e400 ms\"",
    "\"\"",
    "\"3\"",
    "3",
    "-3",
    "\"3 h\"",
    "\"0 ms\"",
    "\"s\"",
    "{ s = 3 }",
    "\"11 s\"",
    "\"10001 ms\"",
];

/// The odd sizes and durations that fit the syntax but not Lambda (or not
/// 64 bits): a configuration holding one of them is always refused.
const OVER_THE_LIMIT: &[&str] = &[
    "\"999999999999 GiB\"",
    "\"18446744073709551615\"",
    "9223372036854775807",
    "\"251 MiB\"",
    "262144001",
    "\"99999999999999999999999 GiB\"",
    "\"99999999999999999999 s\"",
    "\"11 s\"",
    "\"10001 ms\"",
];

/// Route keys API Gateway refuses, or takes (`$default`, `ANY /{proxy+}`),
/// or that only a careless parser would: empty, unicode, braces anywhere.
const ODD_ROUTES: &[&str] = &[
    "",
    " ",
    "GET",
    "GET ",
    "$default",
    "$Default",
    "get /x",
    "ANY /{proxy+}",
    "ANY /{proxy+}/x",
    "GET /{a}/{a}",
    "GET /{a+}/{b}",
    "GET //x",
    "GET /x/",
    "GET /",
    "GET /{}",
    "GET /{+}",
    "GET /{ü}",
    "GET /ünï/{x}",
    "GET /名前",
    "GET /a{b}c",
    "GET /}{",
    "GET /{{x}}",
    "GET /x?y",
    "GET\t/x",
    "PATCH /users/{user_id}",
];

/// Values of the wrong type for a key that wants a string, a list, a bool
/// or a table.
const WRONG_TYPES: &[&str] = &[
    "311",
    "3.11",
    "true",
    "[\"x\"]",
    "[1, 2]",
    "{ a = 1 }",
    "\"x\"",
    "[]",
    "{}",
    "1979-05-27T07:32:00Z",
];

fn odd_value(rng: &mut Rng, pool: &[&str]) -> Value {
    raw(rng.pick(pool))
}

/// Picks a layer or function entry to change; `None` when there is none.
fn pick_entry(rng: &mut Rng, entries: &[(String, Value)]) -> Option<usize> {
    (!entries.is_empty()).then(|| rng.below(entries.len()))
}

/// `core` → `Core`; `None` when case changes nothing.
fn capitalized(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let first = chars.next()?;
    let changed: String = first.to_uppercase().chain(chars).collect();
    (changed != name).then_some(changed)
}

/// Applies one random change; returns its description.
fn mutate(rng: &mut Rng, config: &mut Config) -> String {
    match rng.below(26) {
        0 => {
            let name = rng.pick(&[
                "runtime",
                "architecture",
                "builder",
                "image",
                "exclude",
                "bytecode",
                "budget",
                "import_budget",
            ]);
            let value = odd_value(rng, WRONG_TYPES);
            config.top.retain(|(key, _)| key != name);
            config.top.push((name.to_string(), value));
            format!("wrong type for {name}")
        }
        1 => {
            let Some(index) = pick_entry(rng, &config.layers) else {
                return "nothing".into();
            };
            let name = rng.pick(&["requirements", "source", "arn", "unzipped_size", "allow"]);
            let value = odd_value(rng, WRONG_TYPES);
            set(&mut config.layers[index].1, name, value);
            format!("wrong type for a layer's {name}")
        }
        2 => {
            let Some(index) = pick_entry(rng, &config.functions) else {
                return "nothing".into();
            };
            let name = rng.pick(&["source", "handler", "layers", "budget", "bundle", "allow"]);
            let value = odd_value(rng, WRONG_TYPES);
            set(&mut config.functions[index].1, name, value);
            format!("wrong type for a function's {name}")
        }
        3 => {
            let unknown = rng.pick(&["colour", "Runtime", "handlers", "layer", "timeout", ""]);
            match rng.below(3) {
                0 => config.top.push((unknown.to_string(), s("x"))),
                1 => {
                    if let Some(index) = pick_entry(rng, &config.layers) {
                        set(&mut config.layers[index].1, unknown, s("x"));
                    }
                }
                _ => {
                    if let Some(index) = pick_entry(rng, &config.functions) {
                        set(&mut config.functions[index].1, unknown, s("x"));
                    }
                }
            }
            format!("unknown key `{unknown}`")
        }
        4 => {
            let which = rng.below(5);
            match which {
                0 => config.top.retain(|(key, _)| key != "runtime"),
                1 | 2 => {
                    if let Some(index) = pick_entry(rng, &config.functions) {
                        remove(
                            &mut config.functions[index].1,
                            if which == 1 { "source" } else { "handler" },
                        );
                    }
                }
                3 => config.layers.push(("empty".into(), Value::Table(Vec::new()))),
                _ => config.layers.push((
                    "both".into(),
                    Value::Table(vec![
                        ("requirements".into(), s("layers/both/requirements.txt")),
                        ("source".into(), s("lambdas/both")),
                    ]),
                )),
            }
            "missing or conflicting required keys".into()
        }
        5 | 6 => {
            let odd = rng.pick(ODD_NAMES);
            let in_layers = rng.chance(50) || config.functions.is_empty();
            let entries = if in_layers {
                &mut config.layers
            } else {
                &mut config.functions
            };
            match pick_entry(rng, entries) {
                Some(index) => {
                    let old = std::mem::replace(&mut entries[index].0, odd.to_string());
                    if in_layers && rng.chance(50) {
                        // Keep the references pointing at it.
                        for (_, function) in &mut config.functions {
                            if let Some(Value::List(items)) = field(function, "layers") {
                                for item in items {
                                    if matches!(item, Value::Str(text) if *text == old) {
                                        *item = s(odd);
                                    }
                                }
                            }
                        }
                    }
                }
                None => entries.push((odd.to_string(), profile("odd"))),
            }
            format!("name {odd:?}")
        }
        7 => {
            // Names that differ only in case.
            let in_layers = rng.chance(50) || config.functions.is_empty();
            let entries = if in_layers {
                &mut config.layers
            } else {
                &mut config.functions
            };
            if let Some(index) = pick_entry(rng, entries) {
                let (name, value) = entries[index].clone();
                if let Some(upper) = capitalized(&name) {
                    entries.push((upper, value));
                }
            }
            "case-only duplicate name".into()
        }
        8 | 9 => {
            let size = odd_value(rng, ODD_SIZES);
            match rng.below(3) {
                0 => {
                    config.top.retain(|(key, _)| key != "budget");
                    config.top.push(("budget".into(), size));
                }
                1 => {
                    if let Some(index) = pick_entry(rng, &config.functions) {
                        set(&mut config.functions[index].1, "budget", size);
                    }
                }
                _ => config.layers.push((
                    "big".into(),
                    Value::Table(vec![
                        (
                            "arn".into(),
                            s("arn:aws:lambda:us-east-1:123456789012:layer:big:1"),
                        ),
                        ("unzipped_size".into(), size),
                    ]),
                )),
            }
            "odd size".into()
        }
        10 => {
            let duration = odd_value(rng, ODD_DURATIONS);
            config.top.retain(|(key, _)| key != "import_budget");
            config.top.push(("import_budget".into(), duration));
            "odd duration".into()
        }
        11 => {
            // A function named like a layer.
            let name = config
                .layer_names()
                .first()
                .cloned()
                .unwrap_or_else(|| "core".to_string());
            let layers = config.layer_names();
            let table = function(rng, &name, &layers);
            config.functions.push((name, table));
            "function named like a layer".into()
        }
        12 => {
            let Some(index) = pick_entry(rng, &config.functions) else {
                return "nothing".into();
            };
            let own = config.functions[index].0.clone();
            let extra = if rng.chance(50) { own } else { "nope".to_string() };
            match field(&mut config.functions[index].1, "layers") {
                Some(Value::List(items)) => items.push(s(&extra)),
                _ => set(&mut config.functions[index].1, "layers", list(&[&extra])),
            }
            format!("function lists `{extra}`")
        }
        13 => {
            // More than five layers.
            let mut names = Vec::new();
            for n in 0..(6 + rng.below(3)) {
                let name = format!("p{n}");
                config.layers.push((name.clone(), profile(&name)));
                names.push(s(&name));
            }
            let layers = config.layer_names();
            let mut table = function(rng, "many", &layers);
            set(&mut table, "layers", Value::List(names));
            config.functions.push(("many".into(), table));
            "more than five layers".into()
        }
        14 => {
            let first = config.layer_names().first().cloned();
            let Some(index) = pick_entry(rng, &config.functions) else {
                return "nothing".into();
            };
            let name = first.unwrap_or_else(|| "core".into());
            set(&mut config.functions[index].1, "layers", list(&[&name, &name]));
            "duplicate layer in a list".into()
        }
        15 | 16 => {
            let path = rng.pick(ODD_PATHS);
            if rng.chance(50) {
                if let Some(index) = pick_entry(rng, &config.functions) {
                    set(&mut config.functions[index].1, "source", s(path));
                    return format!("function source {path:?}");
                }
            }
            let name = rng.pick(&["requirements", "source"]);
            match pick_entry(rng, &config.layers) {
                Some(index) => {
                    let table = &mut config.layers[index].1;
                    remove(table, "requirements");
                    remove(table, "source");
                    remove(table, "arn");
                    remove(table, "unzipped_size");
                    set(table, name, s(path));
                }
                None => config
                    .layers
                    .push(("odd".into(), Value::Table(vec![(name.to_string(), s(path))]))),
            }
            format!("layer {name} {path:?}")
        }
        17 | 18 => {
            let handler = rng.pick(ODD_HANDLERS);
            let Some(index) = pick_entry(rng, &config.functions) else {
                return "nothing".into();
            };
            set(&mut config.functions[index].1, "handler", s(handler));
            format!("handler {handler:?}")
        }
        19 => {
            let (name, value) = rng.pick(&[
                ("runtime", "python2.7"),
                ("runtime", "python3.99"),
                ("runtime", ""),
                ("architecture", "arm"),
                ("architecture", "X86_64"),
                ("builder", "docker"),
                ("bytecode", "all"),
                ("image", ""),
            ]);
            config.top.retain(|(key, _)| key != name);
            config.top.push((name.to_string(), s(value)));
            format!("{name} = {value:?}")
        }
        20 => {
            let arn = rng.pick(&[
                "nope",
                "arn:aws:lambda:us-east-1:1:function:f",
                "",
                "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
            ]);
            let mut table = Value::Table(vec![("arn".into(), s(arn))]);
            if rng.chance(60) {
                set(&mut table, "unzipped_size", s("20 MiB"));
            }
            if rng.chance(20) {
                set(&mut table, "requirements", s("layers/x/requirements.txt"));
            }
            config.layers.push(("external".into(), table));
            format!("external layer {arn:?}")
        }
        21 => {
            let which = rng.below(4);
            match which {
                0 => config.top.push(("layers".into(), raw("[]"))),
                1 => config.top.push(("functions".into(), s("x"))),
                2 => config
                    .layers
                    .push(("flat".into(), s("layers/flat/requirements.txt"))),
                _ => config.functions.push(("flat".into(), raw("42"))),
            }
            config.layers.retain(|_| which != 0);
            config.functions.retain(|_| which != 1);
            "layers or functions of the wrong shape".into()
        }
        22 => {
            config.layers.clear();
            "no layers, functions keep their lists".into()
        }
        24 => {
            // Odd routes, maybe the same in two functions, maybe authorized.
            let routes: Vec<Value> = (0..1 + rng.below(3))
                .map(|_| match rng.below(6) {
                    0 => Value::Table(vec![
                        ("key".into(), s(rng.pick(ODD_ROUTES))),
                        (
                            "authorize".into(),
                            odd_value(rng, &["true", "false", "\"yes\"", "1"]),
                        ),
                    ]),
                    1 => odd_value(rng, WRONG_TYPES),
                    _ => s(rng.pick(ODD_ROUTES)),
                })
                .collect();
            let Some(index) = pick_entry(rng, &config.functions) else {
                return "nothing".into();
            };
            set(
                &mut config.functions[index].1,
                "routes",
                Value::List(routes.clone()),
            );
            if rng.chance(30) {
                set(&mut config.functions[index].1, "authorize", raw("true"));
            }
            if let Some(other) = pick_entry(rng, &config.functions).filter(|other| *other != index) {
                set(&mut config.functions[other].1, "routes", Value::List(routes));
            }
            "odd routes".into()
        }
        25 => {
            // An api table and authorizer of odd values.
            let function = match pick_entry(rng, &config.functions) {
                Some(index) if rng.chance(70) => config.functions[index].0.clone(),
                _ => rng.pick(ODD_NAMES).to_string(),
            };
            let mut authorizer = vec![("function".to_string(), s(&function))];
            for (name, pool) in [
                (
                    "payload_format",
                    &["\"1.0\"", "\"2.0\"", "\"3.0\"", "2.0", "\"\""][..],
                ),
                ("response", &["\"iam\"", "\"simple\"", "\"IAM\"", "true"][..]),
                (
                    "identity_sources",
                    &[
                        "[]",
                        "[\"$request.header.Authorization\"]",
                        "[\"$request.header.\"]",
                        "[\"x\"]",
                        "\"$context.x\"",
                    ][..],
                ),
                (
                    "result_ttl",
                    &[
                        "0",
                        "300",
                        "3600",
                        "3601",
                        "-1",
                        "1e400",
                        "18446744073709551616",
                        "\"5 s\"",
                    ][..],
                ),
            ] {
                if rng.chance(50) {
                    authorizer.push((name.to_string(), odd_value(rng, pool)));
                }
            }
            let mut api = vec![("authorizer".to_string(), Value::Table(authorizer))];
            if rng.chance(50) {
                api.push((
                    "payload_format".into(),
                    odd_value(rng, &["\"1.0\"", "\"2.0\"", "1", "\"v2\""]),
                ));
            }
            if rng.chance(10) {
                api.push(("cors".into(), raw("true")));
            }
            config.top.retain(|(key, _)| key != "api");
            config.top.push(("api".into(), Value::Table(api)));
            format!("api with an authorizer `{function}`")
        }
        _ => {
            // Allow lists that escape or are empty strings.
            let value = list(&["../secret", "/etc/shadow", "", "*"]);
            match pick_entry(rng, &config.functions) {
                Some(index) => set(&mut config.functions[index].1, "allow", value),
                None => {
                    if let Some(index) = pick_entry(rng, &config.layers) {
                        set(&mut config.layers[index].1, "allow", value);
                    }
                }
            }
            "odd allow list".into()
        }
    }
}

/// A path the test may create: relative and inside the repository.
fn creatable(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\0')
        && Path::new(path)
            .components()
            .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
}

/// Creates the files and folders the configuration refers to, so that
/// checks past the paths are reached.
fn materialize(repo: &Repo, config: &Config) {
    let root = repo.path();
    let text = |table: &Value, name: &str| -> Option<String> {
        match table {
            Value::Table(fields) => fields.iter().find_map(|(field, value)| match value {
                Value::Str(text) if field == name => Some(text.clone()),
                _ => None,
            }),
            _ => None,
        }
    };
    for (_, layer) in &config.layers {
        if let Some(path) = text(layer, "requirements").filter(|path| creatable(path)) {
            let path = root.join(path);
            let _ = fs::create_dir_all(path.parent().unwrap());
            let _ = fs::write(&path, "--no-index\n--find-links wheels\n");
        }
        if let Some(path) = text(layer, "source").filter(|path| creatable(path)) {
            let _ = fs::create_dir_all(root.join(&path));
            let _ = fs::write(root.join(&path).join("__init__.py"), "NAME = 1\n");
        }
    }
    for (_, function) in &config.functions {
        let Some(source) = text(function, "source").filter(|path| creatable(path)) else {
            continue;
        };
        let dir = root.join(source);
        let _ = fs::create_dir_all(&dir);
        let handler = text(function, "handler").unwrap_or_default();
        if let Some((module, name)) = handler.rsplit_once('.') {
            let file = format!("{}.py", module.replace('.', "/"));
            if creatable(&file) && !name.is_empty() {
                let path = dir.join(file);
                let _ = fs::create_dir_all(path.parent().unwrap());
                let _ = fs::write(path, format!("def {name}(event, context):\n    return 1\n"));
            }
        }
    }
}

struct Case {
    index: usize,
    mutations: Vec<String>,
    materialized: bool,
    toml: String,
}

fn cases() -> Vec<(Case, Config)> {
    let mut rng = Rng(SEED);
    (0..CASES)
        .map(|index| {
            let mut config = base(&mut rng);
            let count = if rng.chance(15) { 0 } else { 1 + rng.below(3) };
            let mutations = (0..count).map(|_| mutate(&mut rng, &mut config)).collect();
            let materialized = rng.chance(50);
            let case = Case {
                index,
                mutations,
                materialized,
                toml: config.toml(),
            };
            (case, config)
        })
        .collect()
}

/// What one invocation did wrong, if anything.
fn judge(case: &Case, args: &[&str], code: Option<i32>, stderr: &str) -> Option<String> {
    let mut wrong = Vec::new();
    match code {
        Some(0 | 2) => {}
        // A dry run builds nothing, so nothing can fail but the input.
        Some(1) => wrong.push("exit code 1 from a dry run (a bad input is exit 2)".to_string()),
        Some(other) => wrong.push(format!("exit code {other}")),
        None => wrong.push("killed by a signal".to_string()),
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        wrong.push("panicked".to_string());
    }
    if let Some(value) = OVER_THE_LIMIT
        .iter()
        .find(|value| case.toml.contains(&format!("= {value}")))
    {
        if code != Some(2) {
            wrong.push(format!("{value} is past Lambda's limits but was not refused"));
        }
    }
    if code == Some(2) && !stderr.lines().any(|line| line.starts_with("error:")) {
        wrong.push("exit code 2 without an `error:` line".to_string());
    }
    if wrong.is_empty() {
        return None;
    }
    let stderr: String = stderr.chars().take(3000).collect();
    Some(format!(
        "case {} ({}; paths {}): `xtask {}`: {}\n--- Cargo.toml:\n{}--- stderr:\n{stderr}",
        case.index,
        if case.mutations.is_empty() {
            "unchanged".to_string()
        } else {
            case.mutations.join(", ")
        },
        if case.materialized { "created" } else { "absent" },
        args.join(" "),
        wrong.join("; "),
        case.toml
    ))
}

#[test]
fn any_configuration_gives_exit_0_or_2_and_never_a_panic() {
    let cases = cases();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let counts = Mutex::new([0usize; 3]);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((case, config)) = cases.get(index) else {
                    break;
                };
                let repo = Repo::new(&case.toml);
                if case.materialized {
                    materialize(&repo, config);
                }
                let site = repo.path().join("runtime-site");
                fs::create_dir_all(&site).unwrap();
                let site = site.display().to_string();
                for args in [&["build", "--dry-run"][..], &["build", "--dry-run", "--json"][..]] {
                    let run = repo.xtask_with(args, &[("XTASK_RUNTIME_SITE", site.as_str())]);
                    let code = run.0.status.code();
                    if let Some(slot @ 0..=2) = code {
                        counts.lock().unwrap()[slot as usize] += 1;
                    }
                    if let Some(failure) = judge(case, args, code, &run.stderr()) {
                        failures.lock().unwrap().push((case.index, failure));
                    }
                }
            });
        }
    });
    let counts = counts.into_inner().unwrap();
    eprintln!(
        "{} configurations, {} runs: {} exited 0, {} exited 1, {} exited 2",
        cases.len(),
        cases.len() * 2,
        counts[0],
        counts[1],
        counts[2]
    );
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|(index, _)| *index);
    assert!(
        failures.is_empty(),
        "{} of {} runs misbehaved; the first ones:\n\n{}",
        failures.len(),
        cases.len() * 2,
        failures
            .iter()
            .take(6)
            .map(|(_, failure)| failure.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
