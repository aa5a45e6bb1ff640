//! The ground floor every wing stands on, knowing nothing of Lambda, Python
//! or the build: writes that are whole or absent (`atomic`), SHA-256 as hex
//! and base64 (`digest`), a Unix time as a UTC date and calendar days
//! (`utc`), credentials out of whatever is shown or kept (`redact`),
//! failures and their exit codes (`error`) and what a run tells people
//! (`progress`: stdout for output, stderr for progress).

pub mod atomic;
pub mod digest;
pub mod error;
pub mod progress;
pub mod redact;
pub mod utc;
