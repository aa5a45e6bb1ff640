//! The local Lambda wing: a function run on this machine as Lambda runs
//! it. Imports Python, containment, configuration, the store and the
//! ground floor.
//!
//! - `runtime_env`: what a function runs on (the host's Python or the
//!   build image) with AWS's runtime interface client;
//! - `function`: what a built function imports, and what would provide a
//!   module it could not;
//! - `layout`: its ZIP and layers laid out as `/var/task` and `/opt`;
//! - `launch`, `sandbox`: its runtime started, with the Runtime API
//!   (`runtime_api`) it talks to;
//! - `request`, `invoke`: what `invoke` is asked, and the events sent;
//! - `samples`, `fakes`, `dev_env`: the events of `invoke --all` and the
//!   local world they run against.

pub mod dev_env;
pub mod fakes;
pub mod function;
pub mod invoke;
pub mod launch;
pub mod layout;
pub mod request;
pub mod runtime_api;
pub mod runtime_env;
pub mod samples;
pub mod sandbox;
