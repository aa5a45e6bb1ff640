//! `cargo xtask build-layers [LAYER...]`: the dependency layers.

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::drive::{drive, Finished};
use crate::config::{Config, LayerSource};
use crate::error::UsageError;
use crate::graph::Kind;
use crate::report::render;

pub fn run(args: NamesArgs) -> Result<()> {
    let (common, names) = (&args.common, &args.names);
    drive(
        common,
        |config, graph| {
            Ok(select(config, names)?
                .iter()
                .filter_map(|name| graph.find(Kind::Profile, name))
                .collect())
        },
        |session, graph, outcome| {
            let selected = select(session.config, names)?;
            let names: Vec<&str> = selected.iter().map(String::as_str).collect();
            if common.json {
                let layers: serde_json::Map<String, serde_json::Value> = names
                    .iter()
                    .filter_map(|name| {
                        let entry = outcome.manifest.layers.get(*name)?;
                        Some(serde_json::to_value(entry).map(|value| (name.to_string(), value)))
                    })
                    .collect::<Result<_, _>>()?;
                let failed: serde_json::Map<String, serde_json::Value> = outcome
                    .failures()
                    .into_iter()
                    .map(|(index, message)| (graph.nodes[index].name.clone(), message.into()))
                    .collect();
                let value = serde_json::json!({ "layers": layers, "failed": failed });
                session.printer.out(&serde_json::to_string_pretty(&value)?);
            }
            session
                .printer
                .info(&render::layer_table(&outcome.manifest, &names));
            Ok(Finished { failed: false })
        },
    )
}

/// The dependency layers to build (those named, or all of them), each
/// for every platform its functions run on, by the names they are built under.
fn select(config: &Config, names: &[String]) -> Result<Vec<String>> {
    let chosen = chosen(config, names)?;
    Ok(chosen
        .iter()
        .flat_map(|name| {
            config
                .layer_platforms(name)
                .into_iter()
                .map(move |platform| config.variant(name, platform))
        })
        .collect())
}

fn chosen(config: &Config, names: &[String]) -> Result<Vec<String>> {
    let all: Vec<String> = config
        .layers
        .values()
        .filter(|layer| matches!(layer.source, LayerSource::Requirements(_)))
        .map(|layer| layer.name.clone())
        .collect();
    if names.is_empty() {
        return Ok(all);
    }
    for name in names {
        match config.layers.get(name).map(|layer| &layer.source) {
            Some(LayerSource::Requirements(_)) => {}
            Some(_) => {
                return Err(UsageError::new(format!(
                    "layer `{name}` has no `requirements`: build-layers builds dependency profiles ({})",
                    all.join(", ")
                ))
                .into())
            }
            None => {
                return Err(UsageError::new(format!(
                    "unknown layer `{name}` (configured: {})",
                    all.join(", ")
                ))
                .into())
            }
        }
    }
    Ok(names.to_vec())
}
