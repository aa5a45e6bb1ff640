//! `cargo xtask build-layers [LAYER...]`: the dependency layers.

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::graph_run::{Ran, Repo};
use crate::config::{Config, LayerSource};
use crate::graph::Kind;
use crate::ground::error::UsageError;
use crate::report::render;

pub fn run(args: NamesArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let opened = repo.open()?;
    let selected = select(&repo.config, &args.names)?;
    let targets: Vec<usize> = selected
        .iter()
        .filter_map(|name| opened.graph.find(Kind::Profile, name))
        .collect();
    let Some(ran) = opened.run(&targets)? else {
        return Ok(());
    };
    show(&repo, &ran, &selected, args.common.json)?;
    ran.finish(false)
}

/// The layers built, as a table (and as JSON), with what failed.
fn show(repo: &Repo, ran: &Ran, selected: &[String], json: bool) -> Result<()> {
    let manifest = &ran.outcome.manifest;
    let names: Vec<&str> = selected.iter().map(String::as_str).collect();
    if json {
        let layers: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .filter_map(|name| {
                let entry = manifest.layers.get(*name)?;
                Some(serde_json::to_value(entry).map(|value| (name.to_string(), value)))
            })
            .collect::<Result<_, _>>()?;
        let failed: serde_json::Map<String, serde_json::Value> = ran
            .outcome
            .failures()
            .into_iter()
            .map(|(index, message)| (ran.graph.nodes[index].name.clone(), message.into()))
            .collect();
        let value = serde_json::json!({ "layers": layers, "failed": failed });
        repo.printer.out(&serde_json::to_string_pretty(&value)?);
    }
    repo.printer.info(&render::layer_table(manifest, &names));
    Ok(())
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
        let problem = match config.layers.get(name).map(|layer| &layer.source) {
            Some(LayerSource::Requirements(_)) => continue,
            Some(_) => format!(
                "layer `{name}` has no `requirements`: build-layers builds dependency profiles ({})",
                all.join(", ")
            ),
            None => format!("unknown layer `{name}` (configured: {})", all.join(", ")),
        };
        return Err(UsageError::new(problem).into());
    }
    Ok(names.to_vec())
}
