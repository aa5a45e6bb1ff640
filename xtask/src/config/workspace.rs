//! Where the workspace is, as cargo says.

use std::path::PathBuf;

use serde_json::Value;

/// What `cargo metadata --no-deps` says of the workspace, read through the
/// `cargo_metadata` crate: its root, its target directory (wherever cargo's
/// configuration puts it) and the `[workspace.metadata]` table. Cargo is
/// asked rather than Cargo.toml read, so that its own rules hold.
pub(super) struct Workspace {
    pub(super) workspace_root: PathBuf,
    pub(super) target_directory: PathBuf,
    pub(super) metadata: Option<Value>,
}

impl Workspace {
    pub(super) fn read() -> Result<Workspace, String> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .no_deps()
            .exec()
            .map_err(|err| match err {
                // Cargo's own words: they name the manifest and the fault.
                cargo_metadata::Error::CargoMetadata { stderr } => stderr.trim().to_string(),
                other => format!("running cargo metadata: {other}"),
            })?;
        Ok(Workspace {
            workspace_root: metadata.workspace_root.into_std_path_buf(),
            target_directory: metadata.target_directory.into_std_path_buf(),
            metadata: Some(metadata.workspace_metadata).filter(|value| !value.is_null()),
        })
    }
}
