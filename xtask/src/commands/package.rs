//! `cargo xtask package [FUNCTION...]`: the source layers and the thin
//! function ZIPs.

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::graph_run::{Ran, Repo};
use crate::config::manifest::LayerKind;
use crate::config::Config;
use crate::graph::Kind;
use crate::ground::error::UsageError;
use crate::report::render;

pub fn run(args: NamesArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let opened = repo.open()?;
    let functions = select(&repo.config, &args.names)?;
    let mut targets = opened.graph.of_kind(&[Kind::SourceLayer]);
    targets.extend(
        functions
            .iter()
            .filter_map(|name| opened.graph.find(Kind::Function, name)),
    );
    let Some(ran) = opened.run(&targets)? else {
        return Ok(());
    };
    show(&repo, &ran, args.common.json)?;
    ran.finish(false)
}

/// The functions and their layers, and the ZIPs written.
fn show(repo: &Repo, ran: &Ran, json: bool) -> Result<()> {
    let manifest = &ran.outcome.manifest;
    let zips: Vec<&str> = ran
        .outcome
        .dist
        .written
        .iter()
        .map(String::as_str)
        .filter(|path| path.ends_with(".zip"))
        .collect();
    if json {
        let layers: std::collections::BTreeMap<_, _> = manifest
            .layers
            .iter()
            .filter(|(_, entry)| entry.kind == LayerKind::Source)
            .collect();
        let value = serde_json::json!({
            "layers": layers,
            "functions": manifest.functions,
            "written": zips,
        });
        repo.printer.out(&serde_json::to_string_pretty(&value)?);
    }
    repo.printer.info(&render::function_table(&repo.config, manifest));
    if zips.is_empty() {
        repo.printer.info("  nothing changed: no ZIP rewritten");
    } else {
        repo.printer.info(&format!("  wrote {}", zips.join(", ")));
    }
    Ok(())
}

fn select(config: &Config, names: &[String]) -> Result<Vec<String>> {
    if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
        let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
        let message = format!("unknown function `{unknown}` (configured: {})", known.join(", "));
        return Err(UsageError::new(message).into());
    }
    if names.is_empty() {
        return Ok(config.functions.keys().cloned().collect());
    }
    Ok(names.to_vec())
}
