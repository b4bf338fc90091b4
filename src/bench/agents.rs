//! `keel bench agents`.

/// Runs the suite and prints its measurements.
pub fn run(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("the agents benchmark is not built yet")
}
