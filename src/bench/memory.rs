//! `keel bench memory`.

/// Runs the suite and prints its measurements.
pub fn run(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("the memory benchmark is not built yet")
}
