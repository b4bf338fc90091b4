//! `[orchestrator]`: how many workers, leases, limits and backoff a coordinator uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[orchestrator]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestratorConfig {
    /// Worker threads in this process.
    pub workers: usize,
    /// Running tasks across every process on the workspace.
    pub max_running: usize,
    /// Running tasks per role unless `role_limits` says otherwise.
    pub default_role_limit: usize,
    pub role_limits: BTreeMap<String, usize>,
    /// How long a claim lasts without a heartbeat.
    pub lease_ms: i64,
    /// How often idle workers look for due tasks.
    pub poll_ms: u64,
    /// Tasks a worker claims per transaction.
    pub claim_batch: usize,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    /// Spread of each backoff (0.2 = ±20%).
    pub jitter: f64,
    /// Seeds the jitter, so retries are reproducible.
    pub seed: u64,
    /// A task whose runs keep dying with their process (a poison pill) is escalated after
    /// this many lost leases instead of taking the daemon down forever.
    pub max_lease_losses: i64,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            workers: 2,
            max_running: 8,
            default_role_limit: 4,
            role_limits: BTreeMap::new(),
            lease_ms: 30_000,
            poll_ms: 250,
            claim_batch: 4,
            backoff_base_ms: 5_000,
            backoff_max_ms: 600_000,
            jitter: 0.2,
            seed: 0,
            max_lease_losses: 20,
        }
    }
}

impl OrchestratorConfig {
    #[must_use]
    pub fn role_limit(&self, role: &str) -> usize {
        self.role_limits
            .get(role)
            .copied()
            .unwrap_or(self.default_role_limit)
    }
}
