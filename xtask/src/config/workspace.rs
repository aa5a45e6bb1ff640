//! Where the workspace is, as cargo says.

use std::path::PathBuf;

use serde_json::Value;

/// What `cargo metadata --no-deps` says of the workspace: its root, its
/// target directory (wherever cargo's configuration puts it) and the
/// `[workspace.metadata]` table. Cargo is asked rather than Cargo.toml read,
/// so that its own rules hold; the answer is parsed here rather than by the
/// cargo_metadata crate, whose dependencies doubled the first compile.
#[derive(serde::Deserialize)]
pub(super) struct Workspace {
    pub(super) workspace_root: PathBuf,
    pub(super) target_directory: PathBuf,
    #[serde(default)]
    pub(super) metadata: Option<Value>,
}

impl Workspace {
    pub(super) fn read() -> Result<Workspace, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = std::process::Command::new(&cargo)
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|err| format!("running {} metadata: {err}", cargo.to_string_lossy()))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|err| format!("reading cargo metadata's answer: {err}"))
    }
}
