//! How Lambda runs each function: memory, timeout, `/tmp`, environment,
//! reserved concurrency and log retention. Set once in `Cargo.toml` (the
//! repository's defaults at the top, a function's own in its table), carried
//! by the manifest to Terraform and to the local runtime, so that what
//! `invoke` runs and what Terraform deploys are the same function.

use std::collections::BTreeMap;

use super::table::{Limit, Table};
use crate::facts;

/// A function's runtime settings, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub memory_mb: u64,
    /// How long an invocation may run, as Lambda's `Timeout`.
    pub timeout_s: u64,
    pub ephemeral_storage_mb: u64,
    /// The repository's variables with the function's own over them.
    pub environment: BTreeMap<String, String>,
    /// `None`: the function shares the account's unreserved pool.
    pub reserved_concurrency: Option<u64>,
    /// 0: the log group never expires.
    pub log_retention_days: u64,
}

/// How long a function's logs are kept when nothing says otherwise: a month
/// of history without paying to keep every debug line forever.
pub const DEFAULT_LOG_RETENTION_DAYS: u64 = 30;

impl Default for Deploy {
    fn default() -> Deploy {
        Deploy {
            memory_mb: facts::DEFAULT_MEMORY_MB,
            timeout_s: facts::DEFAULT_TIMEOUT_S,
            ephemeral_storage_mb: facts::DEFAULT_EPHEMERAL_STORAGE_MB,
            environment: BTreeMap::new(),
            reserved_concurrency: None,
            log_retention_days: DEFAULT_LOG_RETENTION_DAYS,
        }
    }
}

/// The repository's defaults: `[workspace.metadata.lambda]`.
pub(super) fn repository(table: &mut Table) -> Result<Deploy, String> {
    // `reserved_concurrency` is per function only: here it is an unknown key.
    read(table, &Deploy::default())
}

/// One function's settings over the repository's.
pub(super) fn function(table: &mut Table, defaults: &Deploy) -> Result<Deploy, String> {
    let mut deploy = read(table, defaults)?;
    deploy.reserved_concurrency = table.optional_u64("reserved_concurrency", "10")?;
    check_environment(table, &deploy.environment)?;
    Ok(deploy)
}

fn read(table: &mut Table, defaults: &Deploy) -> Result<Deploy, String> {
    let memory_mb = match table.optional_u64("memory", "512")? {
        None => defaults.memory_mb,
        Some(mb) if (facts::MIN_MEMORY_MB..=facts::MAX_MEMORY_MB).contains(&mb) => mb,
        Some(mb) => {
            return Err(format!(
                "{}: {mb} MB is outside Lambda's {} to {} MB (e.g. memory = 512)",
                table.path("memory"),
                facts::MIN_MEMORY_MB,
                facts::MAX_MEMORY_MB
            ))
        }
    };
    let limit = Limit {
        max: facts::MAX_TIMEOUT_S * 1000,
        why: "Lambda's longest function timeout",
    };
    let timeout_s = match table.optional_duration_ms("timeout", &limit)? {
        None => defaults.timeout_s,
        Some(ms) if ms % 1000 == 0 && (1..=facts::MAX_TIMEOUT_S).contains(&(ms / 1000)) => ms / 1000,
        Some(_) => {
            return Err(format!(
                "{}: Lambda takes whole seconds from 1 to {} (e.g. \"15 s\")",
                table.path("timeout"),
                facts::MAX_TIMEOUT_S
            ))
        }
    };
    let ephemeral_storage_mb = match table.optional_u64("ephemeral_storage", "1024")? {
        None => defaults.ephemeral_storage_mb,
        Some(mb) if (facts::DEFAULT_EPHEMERAL_STORAGE_MB..=facts::MAX_EPHEMERAL_STORAGE_MB).contains(&mb) => {
            mb
        }
        Some(mb) => {
            return Err(format!(
                "{}: {mb} MB is outside Lambda's {} to {} MB of /tmp (e.g. ephemeral_storage = 1024)",
                table.path("ephemeral_storage"),
                facts::DEFAULT_EPHEMERAL_STORAGE_MB,
                facts::MAX_EPHEMERAL_STORAGE_MB
            ))
        }
    };
    let log_retention_days = match table.optional_u64("log_retention_days", "14")? {
        None => defaults.log_retention_days,
        Some(days) if days == 0 || facts::LOG_RETENTION_DAYS.contains(&days) => days,
        Some(days) => {
            let allowed: Vec<String> = facts::LOG_RETENTION_DAYS.iter().map(u64::to_string).collect();
            return Err(format!(
                "{}: CloudWatch Logs keeps logs for one of {} days, or 0 for never expiring; not {days}",
                table.path("log_retention_days"),
                allowed.join(", ")
            ));
        }
    };
    let mut environment = defaults.environment.clone();
    let path = table.path("environment");
    for (name, value) in table.optional_str_map("environment")?.unwrap_or_default() {
        check_variable(&path, &name)?;
        environment.insert(name, value);
    }
    Ok(Deploy {
        memory_mb,
        timeout_s,
        ephemeral_storage_mb,
        environment,
        reserved_concurrency: None,
        log_retention_days,
    })
}

/// A name Lambda accepts and does not set itself.
fn check_variable(path: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = name.len() >= 2
        && chars.next().is_some_and(|ch| ch.is_ascii_alphabetic())
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if !valid {
        return Err(format!(
            "{path}.{name}: Lambda takes variable names of two or more letters, digits and `_`, starting with a letter"
        ));
    }
    if facts::RESERVED_ENVIRONMENT.contains(&name) {
        return Err(format!(
            "{path}.{name}: Lambda sets `{name}` itself and refuses it in a function's environment: remove it"
        ));
    }
    Ok(())
}

/// The function's variables together must fit Lambda's 4 KB.
fn check_environment(table: &Table, environment: &BTreeMap<String, String>) -> Result<(), String> {
    let bytes: usize = environment
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if bytes > facts::MAX_ENVIRONMENT_BYTES {
        return Err(format!(
            "{}: {bytes} bytes of variables (with the repository's), over Lambda's {} for a function: move large values to a parameter or secret",
            table.path("environment"),
            facts::MAX_ENVIRONMENT_BYTES
        ));
    }
    Ok(())
}
