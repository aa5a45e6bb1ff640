//! Asks Python's own parser about Python sources (`py/analyze.py`): does a
//! handler module define its handler, and what does each module import.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::contain::Contained;

pub const SCRIPT: &str = include_str!("../../py/analyze.py");

#[derive(Debug, Default, Serialize)]
pub struct Request {
    pub handlers: Vec<HandlerRequest>,
    pub modules: Vec<String>,
    /// Sources to compile to checked-hash bytecode.
    pub compile: Vec<CompileRequest>,
}

#[derive(Debug, Serialize)]
pub struct CompileRequest {
    pub key: String,
    pub file: String,
    /// The path tracebacks show: where the file is at run time.
    pub filename: String,
}

#[derive(Debug, Serialize)]
pub struct HandlerRequest {
    pub key: String,
    pub file: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Answer {
    pub handlers: BTreeMap<String, HandlerAnswer>,
    pub modules: BTreeMap<String, ModuleAnswer>,
    pub stdlib: Vec<String>,
    /// Key → the `.pyc` bytes in hex; `None` for a file that does not compile.
    #[serde(default)]
    pub compiled: BTreeMap<String, Option<String>>,
    /// `cpython-311`: the middle of `__pycache__/<module>.<tag>.pyc`.
    #[serde(default)]
    pub cache_tag: String,
}

/// The bytes of a hex string from the analysis.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct HandlerAnswer {
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleAnswer {
    #[serde(default)]
    pub imports: Vec<Import>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Import {
    pub module: String,
    pub level: u32,
    pub line: u32,
    pub guarded: bool,
    #[serde(default)]
    pub names: Vec<String>,
}

/// Runs the analysis of `request` with `python`, contained (`contain.rs`):
/// it reads the sources and runs none of them, as the invoking user, with
/// no network and none of the caller's variables but the allow-list.
pub fn run(python: &Path, request: &Request) -> Result<Answer> {
    let input = serde_json::to_string(request)?;
    let contained = Contained::as_invoker(&std::env::temp_dir())?;
    let mut command = contained.command(python);
    command.args(super::interpreter::TOOL_FLAGS).args(["-c", SCRIPT]);
    let output = contained
        .output(command, Some(input.as_bytes()))
        .with_context(|| format!("running {} to parse the handlers", python.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} could not analyse the sources: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).context("reading the analysis of the sources")
}
