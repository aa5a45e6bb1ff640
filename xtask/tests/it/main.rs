//! The integration tests, as one binary (one compile and one link, where
//! each file used to be a binary of its own): each module builds its own
//! repositories in temporary directories and runs the real `xtask` binary
//! on them; `support` makes those worlds.

mod support;

mod build_layers;
mod check_limits;
mod config;
mod config_fuzz;
mod contain;
mod finish;
mod incremental;
mod index;
mod invoke;
mod lock;
mod package;
mod platforms;
mod remote_cache;
mod report;
mod robustness;
mod smoke;
