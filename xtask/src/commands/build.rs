//! `cargo xtask build [--docker]`: the main job, every node of the graph;
//! with `--docker`, each image function's image loaded into the engine.

use anyhow::Result;

use crate::cli::args::BuildArgs;
use crate::commands::graph_run::Repo;
use crate::ground::error::EnvironmentError;
use crate::python::container::Engine;
use crate::store::tools::Fact;

pub fn run(args: BuildArgs) -> Result<()> {
    let repo = Repo::load(&args.common)?;
    let opened = repo.open()?;
    let every: Vec<usize> = (0..opened.graph.nodes.len()).collect();
    let Some(ran) = opened.run(&every)? else {
        return Ok(());
    };
    let ok = ran.show(&repo, &args.common)?;
    if args.docker && ran.outcome.missing.is_empty() {
        let images: Vec<_> = ran
            .outcome
            .manifest
            .functions
            .values()
            .filter_map(|entry| entry.image.as_ref())
            .collect();
        if !images.is_empty() {
            let engine = match Engine::detect(&ran.session.sh, &ran.session.tools) {
                Fact::Known(program) => Engine { program },
                _ => return Err(EnvironmentError::new(
                    "--docker: no container engine answers (install docker or podman, or leave out --docker)",
                )
                .into()),
            };
            for image in images {
                let loaded = engine.load_layout(&repo.config.root.join(&image.layout))?;
                repo.printer.info(&format!("{}: {loaded}", image.layout));
            }
        }
    }
    ran.finish(!ok)
}
