//! The integration tests, as one binary (one compile and one link, where
//! each file used to be a binary of its own): each module builds its own
//! repositories in temporary directories and runs the real `xtask` binary
//! on them; `support` makes those worlds.
//!
//! A test that needs what a plain `cargo test` cannot count on sits in a
//! submodule named after that need, and is ignored unless asked for:
//!
//! - `needs_engine`: a container engine (docker or podman) with the test
//!   image, which `support::require_engine` builds when it is missing;
//! - `needs_runtime`: AWS's runtime interface client, in the folder
//!   `XTASK_RUNTIME_CLIENT` names, for tests that run functions;
//! - `needs_moto`: moto's S3 server, in a virtualenv made with uv;
//! - `needs_registry`: Debian's `docker-registry` and `skopeo`, and docker
//!   with the test image and `XTASK_RUNTIME_CLIENT` for the base image the
//!   registry tests push;
//! - `needs_pypi`: PyPI itself;
//! - `needs_curl`: curl, which the tool sends its requests with (`audit`
//!   asking a stand-in for OSV's API on 127.0.0.1).
//!
//! `cargo test -p xtask --test it -- --ignored needs_engine` runs one group;
//! where its need is not met, each of its tests fails saying what is missing
//! and how to have it. No test passes by skipping.

mod support;

mod api_config;
mod architecture;
mod audit;
mod build_layers;
mod check_limits;
mod config;
mod config_fuzz;
mod contain;
mod finish;
mod images;
mod incremental;
mod index;
mod invoke;
mod licenses;
mod lifecycle;
mod lock;
mod package;
mod platforms;
mod prune_cache;
mod registry;
mod remote_cache;
mod report;
mod robustness;
mod sbom;
mod serve;
mod smoke;
