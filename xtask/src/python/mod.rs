//! The Python wing: everything that talks to Python and its packaging.
//! Imports containment, configuration, the store and the ground floor.
//!
//! - `interpreter`: a Python of the runtime's version on the host;
//! - `installer`, `container`: uv or pip on the host, or in the build image;
//! - `requirements`, `lockfile`: what a profile installs, and its lock;
//! - `locking`: the locks `lock` checks or resolves;
//! - `layer_content`, `elf`: what an install wrote, and its binaries;
//! - `sources`, `analyze`, `imports`: application code and its imports;
//! - `version`: PEP 440 versions and their order.

pub mod analyze;
pub mod container;
pub mod elf;
pub mod imports;
pub mod installer;
pub mod interpreter;
pub mod layer_content;
pub mod lockfile;
pub mod locking;
pub mod requirements;
pub mod sources;
pub mod version;
