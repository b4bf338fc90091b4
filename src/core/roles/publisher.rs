//! The built-in `publisher` role: the content workflow's publish stage, a Markdown page on
//! the static site, always through [`crate::core::actions::perform_gated`].

use serde_json::{Value, json};

use super::gated_outcome;
use crate::core::actions::{GatedAction, perform_gated};
use crate::core::connectors::{front_matter, site};
use crate::core::coordinator::{Outcome, RunError, StepContext};

/// The role's name in tasks, schedules and workflow stages.
pub const NAME: &str = "publisher";

/// `publisher` input: `slug`, `body` (Markdown), optional `title`, `version` (default 1),
/// `rationale`/`note` (shown to the operator). Fields missing from the input are taken from
/// the upstream stages' outputs (the latest stage that has them).
pub fn run(ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
    let input = ctx.task().input.clone();
    let field = |name: &str| -> Option<Value> {
        input.get(name).cloned().or_else(|| {
            input
                .get("upstream")
                .and_then(Value::as_object)
                .and_then(|up| up.values().rev().find_map(|o| o.get(name).cloned()))
        })
    };
    let text = |name: &str| field(name).and_then(|v| v.as_str().map(str::to_string));
    let slug = text("slug")
        .ok_or_else(|| RunError::Permanent("publisher input needs a \"slug\"".into()))?;
    let body = text("body")
        .ok_or_else(|| RunError::Permanent("publisher input needs a Markdown \"body\"".into()))?;
    let title = text("title").unwrap_or_else(|| slug.clone());
    // The page as it is now: shown as the diff on the approval card, and the base of the
    // version (same content keeps its version, new content is the next one). Checkpointed,
    // so a resumed run asks for exactly what the operator approved.
    let explicit = field("version").and_then(|v| v.as_i64());
    let (version, current_body): (i64, Option<Value>) =
        ctx.step_with_input("read-page", "tool", &json!({"slug": slug}), |ctx| {
            let current = ctx
                .env
                .gates
                .as_ref()
                .and_then(|g| g.site().read_page(&slug).ok().flatten());
            let version = explicit.unwrap_or_else(|| match &current {
                Some((fm, _)) if fm.content_hash == front_matter::body_hash(&body) => fm.version,
                Some((fm, _)) => fm.version + 1,
                None => 1,
            });
            Ok((
                version,
                current.map(|(fm, old)| json!({"title": fm.title, "body": old})),
            ))
        })?;
    let args = json!({"slug": slug, "title": title, "body": body, "version": version});
    let rationale = [text("rationale"), text("note")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    let action = GatedAction {
        step: "publish".into(),
        action: site::PUBLISH.into(),
        target: slug.clone(),
        object_kind: Some("publication".into()),
        summary: format!("Publish \"{title}\" at {slug}.md (version {version})"),
        rationale,
        proposed_body: Some(json!({"title": title, "body": body})),
        current_body,
        // The draft a workflow's stage wrote (an agent task's output carries `object_ref`).
        object: field("object_ref").and_then(|v| serde_json::from_value(v).ok()),
        args,
        ..GatedAction::default()
    };
    Ok(gated_outcome(perform_gated(ctx, &action)?))
}
