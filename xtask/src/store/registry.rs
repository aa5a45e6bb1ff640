//! Container registries, spoken to through the OCI distribution API
//! (https://github.com/opencontainers/distribution-spec): base images
//! pulled into the store by digest, built images pushed.
//!
//! - `reference`: what names an image.

pub mod reference;

pub use reference::Reference;
