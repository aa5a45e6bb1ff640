//! `cargo xtask`'s library: builds, packages and verifies this repository's
//! Python AWS Lambda functions. Its folders are wings of one house, listed
//! here from the top floor down; a wing imports only the wings below it
//! (docs/architecture.md, kept true by a test). `ground/` is the floor every
//! wing stands on, `facts/` the one source of AWS's facts.

// The top: one module per subcommand, and what each does around its target set.
pub mod commands;
// The command line: parsing and `--help`.
pub mod cli;
// What a run shows: command output and dist/report.html.
pub mod report;
// The build graph: plan, keys, the run and dist/.
pub mod graph;
// What each node does.
pub mod steps;
// The HTTP API answered locally as API Gateway answers it (`serve`).
pub mod api;
// A function run on this machine as Lambda runs it.
pub mod lambda;
// Python, its installers and its packaging.
pub mod python;
// Processes started for code the tool does not own.
pub mod contain;
// The configuration and the manifest.
pub mod config;
// What a run keeps: the store, keys, tools, ZIPs, the remote cache, the run lock.
pub mod store;

// AWS Lambda's facts, each in one place with the page that states it.
pub mod facts;
// The ground floor: whole writes, digests, dates, redaction, errors, progress.
pub mod ground;
