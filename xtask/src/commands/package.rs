//! `cargo xtask package [FUNCTION...]`: the source layers and the thin
//! function ZIPs.

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::drive::{drive, Finished};
use crate::config::manifest::LayerKind;
use crate::config::Config;
use crate::error::UsageError;
use crate::graph::Kind;
use crate::report::render;

pub fn run(args: NamesArgs) -> Result<()> {
    let (common, names) = (&args.common, &args.names);
    drive(
        common,
        |config, graph| {
            let functions = select(config, names)?;
            let mut targets = graph.of_kind(&[Kind::SourceLayer]);
            targets.extend(
                functions
                    .iter()
                    .filter_map(|name| graph.find(Kind::Function, name)),
            );
            Ok(targets)
        },
        |session, _graph, outcome| {
            let manifest = &outcome.manifest;
            if common.json {
                let layers: std::collections::BTreeMap<_, _> = manifest
                    .layers
                    .iter()
                    .filter(|(_, entry)| entry.kind == LayerKind::Source)
                    .collect();
                let value = serde_json::json!({
                    "layers": layers,
                    "functions": manifest.functions,
                    "written": outcome.dist.written.iter().filter(|path| path.ends_with(".zip")).collect::<Vec<_>>(),
                });
                session.printer.out(&serde_json::to_string_pretty(&value)?);
            }
            session
                .printer
                .info(&render::function_table(session.config, manifest));
            let zips: Vec<&String> = outcome
                .dist
                .written
                .iter()
                .filter(|path| path.ends_with(".zip"))
                .collect();
            if zips.is_empty() {
                session.printer.info("  nothing changed: no ZIP rewritten");
            } else {
                let zips: Vec<&str> = zips.iter().map(|path| path.as_str()).collect();
                session.printer.info(&format!("  wrote {}", zips.join(", ")));
            }
            Ok(Finished { failed: false })
        },
    )
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
