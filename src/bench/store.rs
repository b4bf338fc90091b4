//! `keel bench store`.

/// Runs the suite and prints its measurements.
pub fn run(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("the store benchmark is not built yet")
}
