//! `cargo xtask serve [--port N] [--watch] [--fakes] [FUNCTION...]`: the
//! API of `Cargo.toml` on 127.0.0.1 in front of warm functions, built as
//! `build` builds them; with `--watch`, rebuilt and reloaded on save.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::api::generation::{generation, Served};
use crate::api::server::{Generation, Options, Server};
use crate::api::watch;
use crate::cli::args::ServeArgs;
use crate::commands::graph_run::Repo;
use crate::config::manifest::BuiltView;
use crate::config::Config;
use crate::ground::error::UsageError;
use crate::lambda::fakes::Fakes;
use crate::lambda::invoke::Here;
use crate::lambda::request::env_pairs;

/// The port when none is given: the example's web application has 3000.
const DEFAULT_PORT: u16 = 8000;

pub fn run(args: ServeArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let port = match &args.port {
        None => DEFAULT_PORT,
        Some(text) => text
            .parse::<u16>()
            .map_err(|_| UsageError::new(format!("--port: `{text}` is not a port (0 to 65535)")))?,
    };
    for name in &args.functions {
        if !repo.config.functions.contains_key(name) {
            return Err(UsageError::new(format!("serve: no function `{name}` is configured")).into());
        }
    }
    let extra = env_pairs(&args.env)?;
    if args.common.dry_run {
        // The plan the first build would run; nothing is started or served.
        let opened = repo.open()?;
        let every: Vec<usize> = (0..opened.graph.nodes.len()).collect();
        opened.run(&every)?;
        return Ok(());
    }
    let save_events = args.save_events.as_ref().map(PathBuf::from);
    if let Some(dir) = &save_events {
        std::fs::create_dir_all(dir)
            .map_err(|err| UsageError::new(format!("--save-events: {}: {err}", dir.display())))?;
    }
    let sh = xshell::Shell::new()?;
    let fakes = match args.fakes {
        true => Some(Fakes::start(
            &sh,
            &repo.config,
            args.common.installer,
            &repo.printer,
        )?),
        false => None,
    };
    let mut env: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for name in repo.config.functions.keys() {
        let mut pairs = fakes
            .as_ref()
            .and_then(|f| f.env.get(name).cloned())
            .unwrap_or_default();
        pairs.extend(extra.iter().cloned());
        env.insert(name.clone(), pairs);
    }
    let served = Served {
        functions: args.functions.clone(),
        env,
    };
    let Some(first) = build(&repo, &args, &served, None)? else {
        return Err(crate::ground::error::Failed { usage: false }.into());
    };
    let server = Server::start(port, first, Options { save_events })?;
    repo.printer.out(&format!("http://127.0.0.1:{}", server.port));
    for route in &served.api(&repo.config).routes {
        let guard = if route.authorize { " (authorizer)" } else { "" };
        repo.printer.info(&format!(
            "  {:<28} -> {}{guard}",
            route.key.to_string(),
            route.function
        ));
    }
    if !args.watch {
        repo.printer.info("serve: Ctrl-C stops");
        loop {
            std::thread::park();
        }
    }
    repo.printer.info("serve: watching for saves; Ctrl-C stops");
    watch::watch(watched(&repo.config), |changed| {
        let shown: Vec<String> = changed.iter().map(|path| relative(&repo.config, path)).collect();
        repo.printer
            .info(&format!("serve: changed: {}", shown.join(", ")));
        reload(&server, &args, &served).unwrap_or_else(|| watched(&repo.config))
    })
}

/// A rebuild after a save. The new generation replaces the old one only
/// when the build is good; the roots to watch from now on.
fn reload(server: &Server, args: &ServeArgs, served: &Served) -> Option<Vec<PathBuf>> {
    let repo = match Repo::load(&args.common) {
        Ok(repo) => repo,
        Err(err) => {
            eprintln!("serve: {err:#}; still serving the last good build");
            return None;
        }
    };
    let previous = server.current();
    match build(&repo, args, served, Some(&previous)) {
        Ok(Some(next)) => {
            let number = next.number;
            server.replace(next);
            repo.printer.info(&format!("serve: build {number} is serving"));
        }
        Ok(None) => repo
            .printer
            .error("serve: the build failed; still serving the last good build"),
        Err(err) => repo
            .printer
            .error(&format!("serve: {err:#}; still serving the last good build")),
    }
    Some(watched(&repo.config))
}

/// Builds every node as `build` does; a good build's generation, whose new
/// environments are started before it serves (a reload), or `None`.
fn build(
    repo: &Repo,
    args: &ServeArgs,
    served: &Served,
    previous: Option<&Generation>,
) -> Result<Option<Generation>> {
    let opened = repo.open()?;
    let every: Vec<usize> = (0..opened.graph.nodes.len()).collect();
    let Some(ran) = opened.run(&every)? else {
        return Ok(None);
    };
    if !ran.show(repo, &args.common)? || !ran.outcome.missing.is_empty() || !ran.outcome.failures().is_empty()
    {
        return Ok(None);
    }
    let built = BuiltView::new(&ran.outcome.manifest, &repo.config);
    let here = Here {
        config: &repo.config,
        sh: &ran.session.sh,
        tools: &ran.session.tools,
        installer: args.common.installer,
        printer: &repo.printer,
        runners: &ran.graph.runners,
        built: &built,
    };
    let number = previous.map_or(1, |previous| previous.number + 1);
    let (next, fresh) = generation(&here, served, previous, number)?;
    drop(ran);
    if previous.is_some() {
        for name in &fresh {
            if let Err(failed) = next.pools.0[name].prewarm() {
                repo.printer.error(&format!(
                    "serve: {name}: {}: {}",
                    failed.error_type, failed.message
                ));
                return Ok(None);
            }
        }
        if !fresh.is_empty() {
            repo.printer
                .info(&format!("serve: reloaded {}", fresh.join(", ")));
        }
    }
    Ok(Some(next))
}

/// What a build reads that a save changes: Cargo.toml, each function's and
/// source layer's folder, each requirements file's folder (its lock too).
fn watched(config: &Config) -> Vec<PathBuf> {
    let mut roots = vec![config.root.join("Cargo.toml")];
    roots.extend(
        config
            .functions
            .values()
            .map(|function| config.root.join(&function.source)),
    );
    for layer in config.layers.values() {
        match &layer.source {
            crate::config::LayerSource::Source(dir) => roots.push(config.root.join(dir)),
            crate::config::LayerSource::Requirements(file) => {
                roots.extend(config.root.join(file).parent().map(PathBuf::from))
            }
            crate::config::LayerSource::External { .. } => {}
        }
    }
    roots.sort();
    roots.dedup();
    roots
}

fn relative(config: &Config, path: &std::path::Path) -> String {
    path.strip_prefix(&config.root)
        .unwrap_or(path)
        .display()
        .to_string()
}
