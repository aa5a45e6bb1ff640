//! placeholder
use anyhow::Result;
pub fn run(_options: &crate::cli::Options) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
