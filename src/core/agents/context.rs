//! Assembling a run's prompt: instructions and output schema, the task input, retrieved
//! memory with its provenance, and the artifacts of earlier attempts.
//!
//! Fitting policy (stated in the prompt and recorded in the run's context step): the
//! instructions and the task input come first, then retrieved memory by rank, then earlier
//! attempts, newest first; what does not fit is left out, and the input itself is cut (and
//! marked) only when it alone is too large. The limit is the model's context window less
//! the answer's reserve, in tokens, or the template's character limit for the offline
//! provider.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
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

/// What the prompt keeps: decided once (by characters for the offline provider, by tokens
/// for a model with a window), recorded in the context step, and applied as recorded when
/// the run resumes or is replayed, so the prompt is the same whatever the server says now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Fit {
    /// Memory items kept, best-ranked first.
    pub memory_kept: usize,
    /// Oldest earlier attempts left out.
    pub earlier_dropped: usize,
    /// The task input is cut to this many characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_chars: Option<usize>,
    /// The budget it was fitted to (`{window, output_reserve, input_budget, counted…}`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub budget: Value,
    /// What was left out and why.
    pub notes: Vec<String>,
}

/// How big a piece of prompt is, in the unit the budget is in.
pub trait Measure {
    fn size(&self, text: &str) -> usize;
    /// `characters` or `tokens`, for the notes.
    fn unit(&self) -> &'static str;
}

/// Characters (the offline provider's prompt limit).
pub struct Chars;

impl Measure for Chars {
    fn size(&self, text: &str) -> usize {
        text.len()
    }
    fn unit(&self) -> &'static str {
        "characters"
    }
}

/// Tokens counted ahead for each piece (by the server's tokenizer or an estimate); a text
/// not counted ahead (a cut input) is estimated from `chars_per_token`.
pub struct Tokens {
    pub counted: std::collections::HashMap<String, usize>,
    pub chars_per_token: f64,
}

impl Measure for Tokens {
    fn size(&self, text: &str) -> usize {
        self.counted.get(text).copied().unwrap_or_else(|| {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let n = (text.len() as f64 / self.chars_per_token.max(0.5)).ceil() as usize;
            n
        })
    }
    fn unit(&self) -> &'static str {
        "tokens"
    }
}

/// The pieces a prompt is made of, for counting ahead: system prompt, task input, each
/// memory line, each earlier attempt.
#[must_use]
pub fn pieces(tpl: &Loaded, input: &Value, memory: &Retrieval, earlier: &[Value]) -> Vec<String> {
    let mut out = vec![
        system_prompt(tpl),
        serde_json::to_string_pretty(input).unwrap_or_default(),
    ];
    out.extend(memory.slices.iter().map(memory_line));
    out.extend(earlier.iter().map(earlier_line));
    out
}

/// Fixed text around the pieces (headings, notes), in characters or tokens alike.
const FRAME: usize = 200;

/// Decides what fits in `limit` (system prompt included): instructions and task input
/// first, then memory by rank, then earlier attempts (newest kept); the input is cut only
/// when it alone does not fit. `what` names the limit in the notes.
#[must_use]
pub fn plan(
    tpl: &Loaded,
    input: &Value,
    memory: &Retrieval,
    earlier: &[Value],
    measure: &dyn Measure,
    limit: usize,
    what: &str,
) -> Fit {
    let system = measure.size(&system_prompt(tpl));
    let input_text = serde_json::to_string_pretty(input).unwrap_or_default();
    let input_size = measure.size(&input_text);
    let mut fit = Fit::default();
    let mut left = limit.saturating_sub(system + FRAME);
    if input_size > left {
        #[allow(clippy::cast_precision_loss)] // prompt sizes are far below 2^52
        let unit_chars = input_text.len().max(1) as f64 / input_size.max(1) as f64;
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let keep = ((left as f64 * unit_chars) as usize).saturating_sub(60);
        fit.input_chars = Some(keep);
        fit.notes.push(format!(
            "the task input was cut by {} characters to fit {what}",
            input_text.len().saturating_sub(keep)
        ));
        left = 0;
    } else {
        left -= input_size;
    }
    for s in &memory.slices {
        let n = measure.size(&memory_line(s));
        if n > left {
            break;
        }
        left -= n;
        fit.memory_kept += 1;
    }
    let dropped = memory.slices.len() - fit.memory_kept;
    if dropped > 0 {
        fit.notes.push(format!(
            "{dropped} lowest-ranked memory item(s) left out to fit {what}"
        ));
    }
    // Newest attempts are the most useful: keep from the end.
    let mut kept = 0;
    for e in earlier.iter().rev() {
        let n = measure.size(&earlier_line(e));
        if n > left {
            break;
        }
        left -= n;
        kept += 1;
    }
    fit.earlier_dropped = earlier.len() - kept;
    if fit.earlier_dropped > 0 {
        fit.notes.push(format!(
            "{} oldest earlier attempt(s) left out to fit {what}",
            fit.earlier_dropped
        ));
    }
    fit
}

/// The char-limited plan of the offline provider (and of runs recorded before token
/// budgets): the template's `max_prompt_chars`.
#[must_use]
pub fn char_plan(tpl: &Loaded, input: &Value, memory: &Retrieval, earlier: &[Value]) -> Fit {
    let max = tpl.template.limits.max_prompt_chars;
    let limit = max.max(system_prompt(tpl).len() + 1000);
    plan(
        tpl,
        input,
        memory,
        earlier,
        &Chars,
        limit,
        &format!("the prompt limit of {max} characters"),
    )
}

/// Builds the context for `tpl` with `input`, `memory` and `earlier` attempts under the
/// character limit.
#[must_use]
pub fn build(tpl: &Loaded, input: &Value, memory: &Retrieval, earlier: &[Value]) -> Context {
    let fit = char_plan(tpl, input, memory, earlier);
    render(tpl, input, memory, earlier, &fit)
}

/// The context `fit` describes.
#[must_use]
pub fn render(
    tpl: &Loaded,
    input: &Value,
    memory: &Retrieval,
    earlier: &[Value],
    fit: &Fit,
) -> Context {
    let system = system_prompt(tpl);
    let mut input_text = serde_json::to_string_pretty(input).unwrap_or_default();
    if let Some(keep) = fit.input_chars.filter(|k| *k < input_text.len()) {
        let cut = input_text.floor_char_boundary(keep);
        let removed = input_text.len() - cut;
        input_text.truncate(cut);
        let _ = write!(input_text, "\n…[{removed} characters of the input cut]");
    }
    let kept: Vec<&MemorySlice> = memory.slices.iter().take(fit.memory_kept).collect();
    let kept_earlier: Vec<&Value> = earlier
        .iter()
        .skip(fit.earlier_dropped.min(earlier.len()))
        .collect();
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
    if !fit.notes.is_empty() {
        let _ = write!(user, "\nNote: {}.\n", fit.notes.join("; "));
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
        notes: fit.notes.clone(),
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
