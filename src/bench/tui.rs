//! `keel bench tui`.

/// Runs the suite and prints its measurements.
pub fn run(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("the tui benchmark is not built yet")
}
