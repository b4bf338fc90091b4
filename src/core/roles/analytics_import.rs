//! The built-in `analytics-import` role: reads an analytics CSV from the workspace and hands
//! it to [`crate::core::outcomes`] (import, then reconciliation).

use serde_json::{Value, json};

use crate::core::coordinator::{Outcome, RunError, StepContext};
use crate::core::memory::Memory;
use crate::core::objects::Kinds;
use crate::core::outcomes;
use crate::core::workspace::Workspace;

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "analytics-import";

/// The built-in `analytics-import` role (the weekly schedule): input `file`, a CSV path
/// relative to the workspace. Import and reconciliation are idempotent (metric ids derive
/// from what they measure; unchanged totals write nothing), so a resumed run is safe.
pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let file = ctx
        .task()
        .input
        .get("file")
        .and_then(Value::as_str)
        .ok_or_else(|| RunError::Permanent("analytics-import input needs a \"file\"".into()))?
        .to_string();
    let root = ctx
        .env
        .gates
        .as_ref()
        .map(|g| g.root().to_path_buf())
        .ok_or_else(|| RunError::Permanent("analytics-import needs a workspace".into()))?;
    let path = root.join(&file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| RunError::Permanent(format!("cannot read {}: {e}", path.display())))?;
    let ws = Workspace::open(&root)?;
    let kinds = Kinds::from_config(&ws.config)?;
    let mut store = ws.store()?;
    let actor = ctx.actor().clone();
    let now = ctx.now_ms();
    let report = outcomes::import_csv(&mut store, &kinds, &actor, now, &text, &file)?;
    let memory = Memory::open(&ws, &mut store, ctx.env.clock.clone())?;
    let rec = outcomes::reconcile(&mut store, &kinds, Some(&memory), &actor, now)?;
    Ok(Outcome::Succeeded(json!({
        "imported": report.imported,
        "rejected": report.rejected,
        "reconciled": rec,
    })))
}
