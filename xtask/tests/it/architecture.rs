//! Keeps docs/architecture.md true: every source file of the library
//! belongs to a floor the page lists, imports only what stands on lower
//! floors (or in its own wing), and no files import each other in a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const PAGE: &str = include_str!("../../../docs/architecture.md");

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The floors of the page's table: `| floor | `wing/` or `file.rs`, … | …`.
fn floors(page: &str) -> BTreeMap<String, u32> {
    let mut floors = BTreeMap::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(floor) = cells.get(1).and_then(|cell| cell.parse::<u32>().ok()) else {
            continue;
        };
        for unit in cells[2].split('`').skip(1).step_by(2) {
            floors.insert(unit.to_string(), floor);
        }
    }
    floors
}

/// A file's unit on the page: its wing (`graph/`) or, directly in `src/`,
/// the file itself (`facts.rs`).
fn unit_of(relative: &str) -> String {
    match relative.split_once('/') {
        Some((wing, _)) => format!("{wing}/"),
        None => relative.to_string(),
    }
}

/// The module path of a file: `graph/plan.rs` is `graph::plan`,
/// `graph/mod.rs` is `graph`.
fn module_of(relative: &str) -> Vec<String> {
    let trimmed = relative.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(String::from).collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts
}

struct Source {
    relative: String,
    /// The code with comments, string literals and `pub use` re-exports left out.
    code: String,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = fs::read_to_string(&path).unwrap();
            Source {
                relative,
                code: code_only(&text),
            }
        })
        .collect()
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// Lines without comments or string contents, re-exports dropped: a wing's
/// face names what it hands on, which is no dependency of its own.
fn code_only(text: &str) -> String {
    without_inline_modules(&code_lines(text))
}

/// The code without its inline modules (`mod tests { … }`): their `super`
/// is the file itself, and what a file's own tests use is not its import.
fn without_inline_modules(code: &str) -> String {
    let mut kept = String::new();
    let mut rest = code;
    while let Some(start) = rest.find("mod ") {
        let after = &rest[start + 4..];
        let name_end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let boundary = start == 0 || !rest[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if !(boundary && after[name_end..].trim_start().starts_with('{')) {
            kept.push_str(&rest[..start + 4]);
            rest = after;
            continue;
        }
        kept.push_str(&rest[..start]);
        let open = start + 4 + name_end + after[name_end..].find('{').unwrap();
        let mut depth = 0;
        let mut end = rest.len();
        for (index, character) in rest[open..].char_indices() {
            match character {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = open + index + 1;
                break;
            }
        }
        rest = &rest[end..];
    }
    kept.push_str(rest);
    kept
}

fn code_lines(text: &str) -> String {
    let mut code = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let trimmed = line.trim_start();
        if trimmed.starts_with("pub use ") || (trimmed.starts_with("pub(") && trimmed.contains(") use ")) {
            continue;
        }
        // `pub(in crate::report)` names who may see an item, not an import.
        let line = match (line.find("pub(in "), line.find(')')) {
            (Some(start), Some(end)) if end > start => format!("{}pub{}", &line[..start], &line[end + 1..]),
            _ => line.to_string(),
        };
        let mut inside = false;
        for character in line.chars() {
            if character == '"' {
                inside = !inside;
            } else if !inside {
                code.push(character);
            }
        }
        code.push('\n');
    }
    code
}

/// Every path the code names, as module segments from the crate's root:
/// `crate::a::b::C`, each item of `crate::{a, b::c}`, and `super::`,
/// `self::` and a declared child's `child::` resolved from this file.
fn paths(source: &Source) -> Vec<Vec<String>> {
    let own = module_of(&source.relative);
    let code = &source.code;
    let children: Vec<String> = code
        .lines()
        .filter_map(|line| {
            let line = line.trim().strip_prefix("pub ").unwrap_or(line.trim());
            line.strip_prefix("mod ")?.strip_suffix(';').map(String::from)
        })
        .collect();
    let mut prefixes: Vec<(String, Vec<String>)> = vec![
        ("crate::".to_string(), Vec::new()),
        ("super::".to_string(), own[..own.len().saturating_sub(1)].to_vec()),
        ("self::".to_string(), own.clone()),
    ];
    for child in children {
        let mut base = own.clone();
        base.push(child.clone());
        prefixes.push((format!("{child}::"), base));
    }
    let mut found = Vec::new();
    for (prefix, base) in &prefixes {
        for (start, _) in code.match_indices(prefix.as_str()) {
            if code[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[start + prefix.len()..];
            let tails = items(rest);
            if tails.is_empty() && !base.is_empty() {
                found.push(base.clone());
            }
            for tail in tails {
                let mut path = base.clone();
                path.extend(tail);
                found.push(path);
            }
        }
    }
    found
}

/// The module paths after `crate::`: `a::b::C` or the items of `{a, b::c}`.
fn items(rest: &str) -> Vec<Vec<String>> {
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = 0;
        for (index, character) in group.char_indices() {
            match character {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = index;
                break;
            }
        }
        let mut out = Vec::new();
        let mut depth = 0;
        let mut item = String::new();
        for character in group[..end].chars().chain([',']) {
            match character {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(items(item.trim()));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(character);
        }
        return out;
    }
    let path: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let segments: Vec<String> = path
        .split("::")
        .filter(|segment| !segment.is_empty() && *segment != "self")
        .map(String::from)
        .collect();
    if segments.is_empty() {
        Vec::new()
    } else {
        vec![segments]
    }
}

/// The file a module path lands in: the longest prefix that is a file.
fn file_of(path: &[String], files: &BTreeSet<String>) -> Option<String> {
    (1..=path.len()).rev().find_map(|length| {
        let joined = path[..length].join("/");
        [format!("{joined}.rs"), format!("{joined}/mod.rs")]
            .into_iter()
            .find(|candidate| files.contains(candidate))
    })
}

/// file → the files it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let sources = sources();
    let files: BTreeSet<String> = sources.iter().map(|source| source.relative.clone()).collect();
    sources
        .iter()
        .map(|source| {
            let targets = paths(source)
                .iter()
                .filter_map(|path| file_of(path, &files))
                .filter(|target| *target != source.relative)
                .collect();
            (source.relative.clone(), targets)
        })
        .collect()
}

/// Each import that runs up or across the floors, as `file -> file`.
fn against_the_layering(
    floors: &BTreeMap<String, u32>,
    imports: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (file, targets) in imports {
        let unit = unit_of(file);
        for target in targets {
            let other = unit_of(target);
            if other == unit || matches!(file.as_str(), "lib.rs" | "main.rs") {
                continue;
            }
            match (floors.get(&unit), floors.get(&other)) {
                (Some(mine), Some(theirs)) if theirs < mine => {}
                _ => wrong.push(format!("{file} -> {target}")),
            }
        }
    }
    wrong
}

/// Files that import each other in a loop, each loop once.
fn loops(imports: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        file: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = stack.iter().position(|seen| seen == file) {
            found.push(stack[at..].to_vec());
            return;
        }
        if !done.insert(file.to_string()) {
            return;
        }
        stack.push(file.to_string());
        for next in imports.get(file).into_iter().flatten() {
            visit(next, imports, stack, done, found);
        }
        stack.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for file in imports.keys() {
        visit(file, imports, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn every_file_stands_on_a_floor_the_page_lists() {
    let floors = floors(PAGE);
    assert!(
        floors.len() > 5,
        "docs/architecture.md lists no floors: {floors:?}"
    );
    let units: BTreeSet<String> = sources().iter().map(|source| unit_of(&source.relative)).collect();
    let unlisted: Vec<&String> = units
        .iter()
        .filter(|unit| !floors.contains_key(*unit) && unit.as_str() != "lib.rs")
        .collect();
    assert!(
        unlisted.is_empty(),
        "not on docs/architecture.md's floors: {unlisted:?}"
    );
    let gone: Vec<&String> = floors.keys().filter(|unit| !units.contains(*unit)).collect();
    assert!(
        gone.is_empty(),
        "docs/architecture.md lists what src/ does not have: {gone:?}"
    );
}

#[test]
fn no_file_imports_against_the_layering() {
    let wrong = against_the_layering(&floors(PAGE), &imports());
    assert!(
        wrong.is_empty(),
        "imports against docs/architecture.md's floors (a wing imports only lower floors):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_loop() {
    let found = loops(&imports());
    assert!(
        found.is_empty(),
        "files that import each other in a loop: {found:?}"
    );
}

#[test]
fn an_upward_import_is_seen() {
    // The checker itself: a store file naming the graph is caught, and a
    // grouped or `super::` path resolves to the file it lands in.
    let floors = floors("| 3 | `graph/` |\n| 2 | `store/` |\n| 1 | `facts.rs` |\n");
    let source = |relative: &str, text: &str| Source {
        relative: relative.to_string(),
        code: code_only(text),
    };
    let files: BTreeSet<String> = [
        "graph/mod.rs",
        "graph/plan.rs",
        "store/mod.rs",
        "store/inputs.rs",
        "facts.rs",
    ]
    .map(String::from)
    .into();
    let resolve = |source: &Source| -> BTreeSet<String> {
        paths(source)
            .iter()
            .filter_map(|path| file_of(path, &files))
            .filter(|f| *f != source.relative)
            .collect()
    };
    let mut imports = BTreeMap::new();
    let upward = source("store/inputs.rs", "use crate::{facts, graph::plan::Node};\n");
    imports.insert(upward.relative.clone(), resolve(&upward));
    let sideways = source(
        "graph/plan.rs",
        "use super::Graph;\nfn f() { crate::facts::limit(); }\n",
    );
    imports.insert(sideways.relative.clone(), resolve(&sideways));
    assert_eq!(
        imports["graph/plan.rs"],
        ["facts.rs", "graph/mod.rs"].map(String::from).into()
    );
    assert_eq!(
        against_the_layering(&floors, &imports),
        vec!["store/inputs.rs -> graph/plan.rs".to_string()]
    );
    let looped = source("graph/mod.rs", "use self::plan::Node;\nuse crate::graph::plan;\n");
    imports.insert(looped.relative.clone(), resolve(&looped));
    assert_eq!(
        loops(&imports),
        vec![vec!["graph/mod.rs".to_string(), "graph/plan.rs".to_string()]]
    );
}
