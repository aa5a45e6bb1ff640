//! `cargo xtask push [FUNCTION...]`: each image function's image, built
//! first when stale, put into its `image_repository` by digest; then the
//! manifest names it (`image.uri`) for Terraform.

use anyhow::Result;

use crate::cli::args::NamesArgs;
use crate::commands::graph_run::Repo;
use crate::config::{Config, Package};
use crate::graph::{dist, Kind};
use crate::ground::error::{Failed, UsageError};
use crate::steps::image::Pushes;
use crate::store::registry;

pub fn run(args: NamesArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let functions = select(&repo.config, &args.names)?;
    let opened = repo.open()?;
    let targets: Vec<usize> = functions
        .iter()
        .filter_map(|name| opened.graph.find(Kind::Image, name))
        .collect();
    if args.common.dry_run {
        for name in &functions {
            repo.printer.out(&format!(
                "push {name}: would push {} to {}",
                dist::image_dir(name),
                repository(&repo.config, name)
            ));
        }
    }
    let Some(mut ran) = opened.run(&targets)? else {
        return Ok(());
    };
    if !ran.outcome.failures().is_empty() {
        return ran.finish(true);
    }
    let (config, printer) = (&repo.config, &repo.printer);
    let mut failed = 0;
    let mut lines = Vec::new();
    for name in &functions {
        let Some(image) = ran
            .outcome
            .manifest
            .functions
            .get(name)
            .and_then(|entry| entry.image.clone())
        else {
            printer.error(&format!("push {name}: its image is not built"));
            failed += 1;
            continue;
        };
        let target = repository(config, name);
        let layout = config.root.join(&image.layout);
        let progress = |line: &str| printer.detail(&format!("push {name}: {line}"));
        // The base's blobs are mounted from its repository when it is on the same registry.
        let mount_from = registry::Reference::parse(&image.base)
            .ok()
            .filter(|base| base.registry == target.registry && base.repository != target.repository)
            .map(|base| base.repository);
        match registry::push_layout_mounting(&layout, &target, None, mount_from.as_deref(), &progress) {
            Ok(pushed) => {
                let uri = format!("{target}@{}", pushed.digest);
                Pushes::record(&config.cache_dir(), &uri)?;
                lines.push(format!(
                    "{name}: {uri} ({} blob(s) uploaded, {} mounted from the base's repository, {} already there)",
                    pushed.uploaded.len(),
                    pushed.mounted.len(),
                    pushed.present.len()
                ));
                if let Some(entry) = ran.outcome.manifest.functions.get_mut(name) {
                    if let Some(image) = entry.image.as_mut() {
                        image.uri = Some(uri.clone());
                    }
                }
                printer.out(&uri);
            }
            Err(err) => {
                printer.error(&format!(
                    "push {name}: {}",
                    crate::ground::error::format_chain(&err)
                ));
                failed += 1;
            }
        }
    }
    // Only what was pushed whole is recorded; the rest keeps no uri.
    if ran.outcome.missing.is_empty() {
        dist::write_manifest(config, &ran.outcome.manifest)?;
    }
    for line in lines {
        printer.info(&format!("pushed {line}"));
    }
    if failed > 0 {
        printer.error(&format!("{failed} of {} push(es) failed", functions.len()));
        return Err(Failed::default().into());
    }
    ran.finish(false)
}

/// Where `name`'s image goes (checked by [`select`]).
fn repository(config: &Config, name: &str) -> registry::Reference {
    match &config.functions[name].package {
        Package::Image(spec) => spec.repository.clone().expect("selected with a repository"),
        Package::Zip => unreachable!("selected as an image function"),
    }
}

/// The image functions named (none: every one), each with a repository.
fn select(config: &Config, names: &[String]) -> Result<Vec<String>> {
    let images: Vec<&str> = config
        .functions
        .values()
        .filter(|function| matches!(function.package, Package::Image(_)))
        .map(|function| function.name.as_str())
        .collect();
    if let Some(unknown) = names.iter().find(|name| !config.functions.contains_key(*name)) {
        let known: Vec<_> = config.functions.keys().map(String::as_str).collect();
        let message = format!("unknown function `{unknown}` (configured: {})", known.join(", "));
        return Err(UsageError::new(message).into());
    }
    if let Some(zip) = names.iter().find(|name| !images.contains(&name.as_str())) {
        return Err(UsageError::new(format!(
            "function `{zip}` ships as a ZIP, not an image: set `package = \"image\"` in [{}.functions.{zip}] to push it",
            crate::config::TABLE
        ))
        .into());
    }
    let chosen: Vec<String> = if names.is_empty() {
        if images.is_empty() {
            return Err(UsageError::new(format!(
                "no function ships as an image: set `package = \"image\"` for one in [{}.functions.<name>]",
                crate::config::TABLE
            ))
            .into());
        }
        images.iter().map(|name| name.to_string()).collect()
    } else {
        names.to_vec()
    };
    for name in &chosen {
        if let Package::Image(spec) = &config.functions[name].package {
            if spec.repository.is_none() {
                return Err(UsageError::new(format!(
                    "function `{name}` has no repository to push to: set `image_repository = \"<registry>/<path>\"` in [{}] or in [{}.functions.{name}]",
                    crate::config::TABLE,
                    crate::config::TABLE
                ))
                .into());
            }
        }
    }
    Ok(chosen)
}
