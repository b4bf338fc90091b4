//! Retry policy: exponential backoff with jitter (deterministic for a given seed, task and
//! attempt, so tests under a manual clock know exactly when the next attempt is due) and
//! the suggested fix shown on an escalation.

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::OrchestratorConfig;
use crate::core::canonical;
use crate::core::clock::Millis;

/// Delay before attempt `failed_attempts + 1`: base·2^(n−1), capped, then spread by ±jitter.
#[must_use]
pub fn backoff_ms(config: &OrchestratorConfig, task_id: &str, failed_attempts: i64) -> Millis {
    let exponent = u32::try_from((failed_attempts - 1).clamp(0, 30)).unwrap_or(30);
    let raw = config
        .backoff_base_ms
        .saturating_mul(1_i64 << exponent)
        .min(config.backoff_max_ms);
    let seed_hex =
        canonical::sha256_hex(format!("{}:{task_id}:{failed_attempts}", config.seed).as_bytes());
    let seed = u64::from_str_radix(&seed_hex[..16], 16).unwrap_or(0);
    let mut rng = StdRng::seed_from_u64(seed);
    let jitter = config.jitter.clamp(0.0, 1.0);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let spread =
        (raw as f64 * (1.0 - jitter + rng.random::<f64>() * 2.0 * jitter)).round() as Millis;
    spread.max(1)
}

/// One line telling the operator what is most likely to fix a task that kept failing.
#[must_use]
pub fn suggested_fix(role: &str, error: &str) -> String {
    let e = error.to_lowercase();
    if e.contains("timed out") || e.contains("timeout") {
        format!(
            "the {role} run keeps timing out: raise the task's timeout_ms or split the work, then retry"
        )
    } else if role == crate::core::roles::triage::NAME && e.contains("operator decides") {
        "route it yourself: L on it in the console's queue, or keel memory decide --task ID LABEL (a role, a workflow or spam; the label is learned for later items) — or add examples / fetch the model and retry".into()
    } else if e.contains("output fails the schema") {
        format!(
            "the {role}'s answer did not fit its output schema (its raw answer is kept in the run: keel runs show RUN): check that the input names what it needs (an object that exists, the right ids), edit it (keel task retry ID --input …) and retry"
        )
    } else if e.contains("schema") || e.contains("invalid") {
        "the input was refused (it does not fit its schema or is invalid): edit it (keel task retry ID --input …) and retry".into()
    } else if e.contains("budget") {
        // Before the template check: a budget stop says to raise the budget in the template.
        "the run hit a budget: raise the role's budget or approve the cost, then retry".into()
    } else if e.contains("unknown role") || e.contains("no executor") || e.contains("template") {
        format!(
            "no agent template runs role {role:?} any more: restore agents/{role}.toml, then retry — or cancel"
        )
    } else if e.contains("cannot confirm") || e.contains("may already have been applied") {
        "an external action may already have happened: check the target, then retry (it will not be re-sent) or cancel".into()
    } else if e.contains("connection")
        || e.contains("temporary")
        || e.contains("http 5")
        || e.contains("429")
    {
        "the target kept failing or was unreachable: check that it is up (and your network), then retry".into()
    } else if e.contains("cost") {
        "the run hit a budget: raise the role's budget or approve the cost, then retry".into()
    } else {
        "read the error history (keel task show ID), fix the cause or edit the input, then retry — or cancel".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_is_deterministic() {
        let config = OrchestratorConfig {
            backoff_base_ms: 1_000,
            backoff_max_ms: 8_000,
            jitter: 0.2,
            ..OrchestratorConfig::default()
        };
        let delays: Vec<Millis> = (1..=6).map(|n| backoff_ms(&config, "t1", n)).collect();
        assert_eq!(
            delays,
            (1..=6)
                .map(|n| backoff_ms(&config, "t1", n))
                .collect::<Vec<_>>()
        );
        for (n, d) in delays.iter().enumerate() {
            let nominal = (1_000_i64 << n).min(8_000);
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let (lo, hi) = (
                (nominal as f64 * 0.8) as i64,
                (nominal as f64 * 1.2).ceil() as i64,
            );
            assert!(
                (lo..=hi).contains(d),
                "attempt {}: {d} not in {lo}..={hi}",
                n + 1
            );
        }
        assert_ne!(
            backoff_ms(&config, "t1", 1),
            backoff_ms(&config, "t2", 1),
            "jitter spreads tasks"
        );
    }

    #[test]
    fn fixes_name_the_likely_cause() {
        assert!(suggested_fix("writer", "timed out after 10 ms").contains("timeout_ms"));
        assert!(suggested_fix("poet", "no executor for role").contains("agents/poet.toml"));
        let answer = suggested_fix(
            "accountant",
            "agent run r: output fails the schema after 1 repair attempt(s): at /invoice/lines",
        );
        assert!(answer.contains("accountant's answer") && answer.contains("raw answer"));
        assert!(suggested_fix("x", "input does not fit its schema").contains("input was refused"));
    }
}
