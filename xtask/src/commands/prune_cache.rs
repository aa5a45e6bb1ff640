//! `cargo xtask prune-cache [--max-size SIZE]`: the cache every repository
//! of the user shares (`store::user_cache`: finished distributions) pruned
//! to its bound now, the entries used longest ago first. Needs no
//! repository: the cache is the user's, not the checkout's.

use anyhow::Result;

use crate::cli::args::PruneCacheArgs;
use crate::ground::error::UsageError;
use crate::ground::progress::{human_bytes, Printer};
use crate::store::user_cache::{UserCache, DIR_VARIABLE, MAX_VARIABLE};

pub fn run(args: PruneCacheArgs) -> Result<()> {
    let printer = Printer::new(args.common.verbosity);
    let max = match &args.max_size {
        Some(text) => crate::config::parse_bytes(text).ok_or_else(|| {
            UsageError::new(format!(
                "--max-size: `{text}` is not a size (write it as {MAX_VARIABLE} takes it: \"2 GiB\", \"500 MB\" or a number of bytes; 0 empties the cache)"
            ))
        })?,
        None => crate::config::user_cache_bound()?,
    };
    let Some(cache) = UserCache::locate()? else {
        printer.info(&format!(
            "prune-cache: nothing to prune: with none of {DIR_VARIABLE}, XDG_CACHE_HOME and HOME set, nothing is cached"
        ));
        return Ok(());
    };
    let dir = cache.dir.display();
    if args.common.dry_run {
        printer.info(&format!(
            "prune-cache: would prune {dir} to {} (the entries used longest ago first)",
            human_bytes(max)
        ));
        return Ok(());
    }
    let pruned = cache.prune(max)?;
    printer.info(&format!(
        "prune-cache: {dir}: removed {} ({}), kept {} ({}) of at most {}",
        entries(pruned.removed),
        human_bytes(pruned.freed),
        entries(pruned.kept),
        human_bytes(pruned.kept_bytes),
        human_bytes(max)
    ));
    Ok(())
}

fn entries(count: usize) -> String {
    match count {
        1 => "1 entry".to_string(),
        _ => format!("{count} entries"),
    }
}
