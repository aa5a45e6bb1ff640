//! `cargo xtask build`: the main job, every node of the graph.

use anyhow::Result;

use crate::cli::Common;
use crate::commands::graph_run::Repo;

pub fn run(common: Common) -> Result<()> {
    let repo = Repo::load(&common)?;
    let opened = repo.open()?;
    let every: Vec<usize> = (0..opened.graph.nodes.len()).collect();
    let Some(ran) = opened.run(&every)? else {
        return Ok(());
    };
    let ok = ran.show(&repo, &common)?;
    ran.finish(!ok)
}
