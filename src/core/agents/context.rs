//! Assembling a run's prompt: instructions and output schema, the task input, retrieved
//! memory with its provenance, and the artifacts of earlier attempts.
//!
//! Trimming policy for oversized prompts (stated in the prompt and recorded in the run):
//! drop the lowest-ranked memory items first, then the oldest earlier attempts, and only
//! then cut the task input, marking the cut.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::template::Loaded;
use super::tools::{MemorySlice, Retrieval, ToolName};
use crate::core::llm::{Message, Role};

/// What the runtime sends, plus what the offline provider reads and the trim notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub messages: Vec<Message>,
    /// Structured context for the offline provider (role, input, kept memory).
    pub structured: Value,
    /// What was left out and why (empty when nothing was).
    pub notes: Vec<String>,
    pub kept_memory: usize,
}

fn system_prompt(tpl: &Loaded) -> String {
    let tools: Vec<&str> = tpl
        .template
        .tools
        .allowed
        .iter()
        .map(|t| t.as_str())
        .collect();
    format!(
        "{}\n\nYou act for the role `{}`. Tools you may call: {}. You may read objects of kinds [{}] and write [{}].\n\
         Your final answer must be one JSON object that validates against this JSON Schema, and its `rationale` \
         must say briefly why you decided as you did:\n{}",
        tpl.template.instructions.trim(),
        tpl.name,
        if tools.is_empty() {
            "none".to_string()
        } else {
            tools.join(", ")
        },
        tpl.template.objects.read.join(", "),
        tpl.template.objects.write.join(", "),
        crate::core::canonical::to_string(&tpl.schema),
    )
}

fn memory_line(s: &MemorySlice) -> String {
    format!(
        "- [{} v{} {} score {:.3}] {}\n",
        s.item,
        s.version,
        s.kind,
        s.score,
        s.text.trim()
    )
}

fn earlier_line(e: &Value) -> String {
    format!("- {}\n", crate::core::canonical::to_string(e))
}

/// Builds the context for `tpl` with `input`, `memory` and `earlier` attempts.
#[must_use]
pub fn build(tpl: &Loaded, input: &Value, memory: &Retrieval, earlier: &[Value]) -> Context {
    let system = system_prompt(tpl);
    let limit = tpl
        .template
        .limits
        .max_prompt_chars
        .saturating_sub(system.len())
        .max(1000);
    let mut input_text = serde_json::to_string_pretty(input).unwrap_or_default();
    let mut kept: Vec<&MemorySlice> = memory.slices.iter().collect();
    let mut kept_earlier: Vec<&Value> = earlier.iter().collect();
    let mut notes = Vec::new();
    let size = |input_text: &str, kept: &[&MemorySlice], kept_earlier: &[&Value]| {
        input_text.len()
            + kept.iter().map(|s| memory_line(s).len()).sum::<usize>()
            + kept_earlier
                .iter()
                .map(|e| earlier_line(e).len())
                .sum::<usize>()
            + 200
    };
    let mut dropped = 0;
    while size(&input_text, &kept, &kept_earlier) > limit && !kept.is_empty() {
        kept.pop();
        dropped += 1;
    }
    if dropped > 0 {
        notes.push(format!("{dropped} lowest-ranked memory item(s) left out to fit the prompt limit of {} characters", tpl.template.limits.max_prompt_chars));
    }
    let mut dropped = 0;
    while size(&input_text, &kept, &kept_earlier) > limit && !kept_earlier.is_empty() {
        kept_earlier.remove(0);
        dropped += 1;
    }
    if dropped > 0 {
        notes.push(format!(
            "{dropped} oldest earlier attempt(s) left out to fit the prompt limit"
        ));
    }
    let over = size(&input_text, &kept, &kept_earlier).saturating_sub(limit);
    if over > 0 {
        let keep = input_text.len().saturating_sub(over + 40);
        let cut = input_text.floor_char_boundary(keep);
        let removed = input_text.len() - cut;
        input_text.truncate(cut);
        let _ = write!(input_text, "\n…[{removed} characters of the input cut]");
        notes.push(format!(
            "the task input was cut by {removed} characters to fit the prompt limit"
        ));
    }

    let mut user = format!("Task input:\n{input_text}\n");
    if !kept.is_empty() {
        user.push_str("\nRetrieved memory (id, version, kind, score):\n");
        for s in &kept {
            user.push_str(&memory_line(s));
        }
    }
    if !kept_earlier.is_empty() {
        user.push_str("\nEarlier attempts at this task (learn from their errors):\n");
        for e in &kept_earlier {
            user.push_str(&earlier_line(e));
        }
    }
    if !notes.is_empty() {
        let _ = write!(user, "\nNote: {}.\n", notes.join("; "));
    }
    let structured = json!({
        "role": tpl.name,
        "recipe": tpl.recipe(),
        "input": input,
        "memory": kept,
        "earlier": kept_earlier,
    });
    Context {
        messages: vec![
            Message::new(Role::System, system),
            Message::new(Role::User, user),
        ],
        structured,
        notes,
        kept_memory: kept.len(),
    }
}

/// The tool specs offered to the model: only the allowed ones.
#[must_use]
pub fn tool_specs(tpl: &Loaded) -> Vec<crate::core::llm::ToolSpec> {
    tpl.template
        .tools
        .allowed
        .iter()
        .map(|t: &ToolName| t.spec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::agents::template::Templates;

    #[test]
    fn oversized_prompts_drop_memory_first_and_say_so() {
        let mut tpl = Templates::shipped()
            .unwrap()
            .get("researcher")
            .unwrap()
            .clone();
        tpl.template.limits.max_prompt_chars = 6000;
        let slices = (0..50)
            .map(|i| MemorySlice {
                item: format!("idea/{i}"),
                version: 1,
                kind: "idea".into(),
                score: 1.0 - f64::from(i) / 100.0,
                text: "x".repeat(200),
            })
            .collect();
        let ctx = build(
            &tpl,
            &json!({"goals": ["g"]}),
            &Retrieval {
                slices,
                params: Value::Null,
            },
            &[],
        );
        assert!(ctx.kept_memory < 50 && ctx.kept_memory > 0);
        assert!(ctx.notes[0].contains("lowest-ranked"), "{:?}", ctx.notes);
        assert!(ctx.messages[1].content.contains("idea/0 "));
        assert!(!ctx.messages[1].content.contains("idea/49 "));
        let total: usize = ctx.messages.iter().map(|m| m.content.len()).sum();
        assert!(total <= 6000 + 300, "{total}");
    }

    #[test]
    fn huge_input_is_cut_with_a_mark() {
        let tpl = Templates::shipped().unwrap().get("writer").unwrap().clone();
        let ctx = build(
            &tpl,
            &json!({"brief": "y".repeat(100_000)}),
            &Retrieval::default(),
            &[],
        );
        assert!(
            ctx.messages[1]
                .content
                .contains("characters of the input cut")
        );
        assert!(ctx.messages[1].content.len() < 50_000);
    }
}
