//! Container registries, spoken to through the OCI distribution API
//! (https://github.com/opencontainers/distribution-spec, spec.md: pulling
//! manifests and blobs, pushing blobs in chunks and manifests): base
//! images pulled into the store by digest, built images pushed. Manifests
//! are read as the OCI image specification (manifest.md, image-index.md)
//! and Docker's v2 schema 2 define them. Nothing fetched is believed: a
//! manifest named by digest must hash to it, a blob to its descriptor's
//! digest and size, or it is refused and nothing is kept.
//!
//! - `reference`: what names an image;
//! - `auth`: the credentials (ECR's, `XTASK_REGISTRY_*`'s, a token
//!   service's), never on a command line, on disk or in a message;
//! - `client`: one registry's requests (curl with its configuration on
//!   stdin, as the remote cache's), manifests and blobs;
//! - `upload`: a blob's chunked, resumable upload;
//! - `manifest`: manifests and indexes read, a platform chosen;
//! - `transfer`: an image pulled into a folder, an OCI layout pushed.

mod auth;
mod client;
pub mod manifest;
pub mod reference;
mod transfer;
mod upload;

pub use auth::{ENV_ECR_ENDPOINT, ENV_PASSWORD, ENV_TOKEN, ENV_USERNAME};
pub use client::{Client, Resolved};
pub use manifest::Descriptor;
pub use reference::Reference;
pub use transfer::{pull, push_layout, push_layout_mounting, Pulled, Pushed};

/// A blob's digest is named as the image parts name it.
pub use super::oci::digest_of;
