//! `keel bench orchestrator`.

/// Runs the suite and prints its measurements.
pub fn run(_json: bool) -> anyhow::Result<()> {
    anyhow::bail!("the orchestrator benchmark is not built yet")
}
