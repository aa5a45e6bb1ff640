//! placeholder
use anyhow::Result;
pub fn run(_options: &crate::cli::Options, _names: &[String]) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
