//! The kinds of failure the tool reports, and how they become an exit
//! code: 2 for bad usage or configuration, 1 for work that failed, 3 for
//! a check that could give no verdict.

use std::fmt;
use std::process::ExitCode;

/// Bad usage or configuration: exit code 2.
#[derive(Debug)]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> UsageError {
        UsageError(message.into())
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// This machine cannot do what the configuration asks (no container
/// engine, no emulator): exit code 2 too, but the configuration is fine, so
/// nothing built from it is thrown away.
#[derive(Debug)]
pub struct EnvironmentError(String);

impl EnvironmentError {
    pub fn new(message: impl Into<String>) -> EnvironmentError {
        EnvironmentError(message.into())
    }
}

impl fmt::Display for EnvironmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EnvironmentError {}

/// Whether the configuration itself is wrong (not the machine).
pub fn is_configuration(err: &anyhow::Error) -> bool {
    is_usage(err) && !err.chain().any(|cause| cause.is::<EnvironmentError>())
}

/// Work that failed and whose details were already printed: exit code 1
/// (or 2 when `usage` says a configuration error caused it) without
/// another message.
#[derive(Debug, Default)]
pub struct Failed {
    pub usage: bool,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Failed {}

/// A check that could not be made (`audit` with no advisory database to
/// ask), already said: exit code 3, so that neither a pass (0) nor a
/// finding (1) is claimed.
#[derive(Debug)]
pub struct NoVerdict;

impl fmt::Display for NoVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no verdict")
    }
}

impl std::error::Error for NoVerdict {}

/// The exit code of a check that could give no verdict.
pub const NO_VERDICT_EXIT: u8 = 3;

/// Whether an error was caused by bad usage or configuration.
pub fn is_usage(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause.is::<EnvironmentError>()
            || cause.downcast_ref::<Failed>().is_some_and(|failed| failed.usage)
    })
}

/// Prints the error, first line then its causes, and picks the exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<NoVerdict>().is_some() {
        return ExitCode::from(NO_VERDICT_EXIT);
    }
    if err.downcast_ref::<Failed>().is_none() {
        // An error may quote a configured value or an installer's stderr.
        eprintln!("error: {}", crate::ground::redact::urls(&format_chain(err)));
    }
    if is_usage(err) {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// `first` then `Caused by:` lines, as cargo prints an error chain.
pub fn format_chain(err: &anyhow::Error) -> String {
    let mut causes = err.chain().map(|cause| cause.to_string());
    let mut text = causes.next().unwrap_or_default();
    let rest: Vec<String> = causes.collect();
    if !rest.is_empty() {
        text.push_str("\n\nCaused by:");
        for cause in rest {
            for (index, line) in cause.lines().enumerate() {
                let lead = if index == 0 { "  " } else { "    " };
                text.push_str(&format!("\n{lead}{line}"));
            }
        }
    }
    text
}
