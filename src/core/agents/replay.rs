//! `keel runs replay RUN`: re-executes a run from its recorded model and tool calls — no
//! network, no object writes — and says whether the outcome matches the original.

use serde_json::Value;

use super::record;
use super::runtime::{RunOutcome, Runtime};
use crate::core::error::{Error, Result};

pub use crate::protocol::ReplayReport;

/// Replays `run` with `rt` (whose registry is never used for network calls in replay).
pub async fn replay_run(rt: &mut Runtime, run: &str) -> Result<ReplayReport> {
    let original = record::load_run(rt.store.conn(), run)?.ok_or_else(|| Error::NotFound {
        kind: "run".into(),
        id: run.into(),
    })?;
    if original.status == "running" {
        return Err(Error::invalid(
            "replay",
            format!("run {run} is still running"),
        ));
    }
    let outcome = rt.replay(&original).await?;
    let hash = |v: &Value| crate::core::canonical::hash_value(v);
    let original_output = original.output.as_ref().map(hash);
    let replay_output = match &outcome {
        RunOutcome::Succeeded { output, .. } => Some(hash(output)),
        _ => None,
    };
    let mut differences = Vec::new();
    if original.status != outcome.status() {
        differences.push(format!(
            "status: {} then, {} now",
            original.status,
            outcome.status()
        ));
    }
    if original_output != replay_output {
        differences.push("the accepted output differs".into());
    }
    let replay_error = match &outcome {
        RunOutcome::Escalated { reason, .. } => Some(reason.clone()),
        RunOutcome::Failed { error, .. } => Some(error.clone()),
        _ => None,
    };
    let mut notes = Vec::new();
    if differences.is_empty() && original.error != replay_error {
        let line = format!(
            "same status, different reason: {:?} then, {:?} now",
            original.error.clone().unwrap_or_default(),
            replay_error.unwrap_or_default()
        );
        // An escalation is a decision and must replay exactly; a failure may have come from
        // outside (a provider that was down), which no record can reproduce.
        if original.status == "failed" {
            notes.push(line);
        } else {
            differences.push(line);
        }
    }
    Ok(ReplayReport {
        original: original.id,
        replay: outcome.run().to_string(),
        matches: differences.is_empty(),
        original_status: original.status,
        replay_status: outcome.status().to_string(),
        original_output,
        replay_output,
        differences,
        notes,
    })
}
