//! Fitting a run into its model's context window. The first prompt is planned piece by
//! piece (instructions and input first, then memory by rank, then earlier attempts) within
//! the window less the answer's reserve; every later request (with tool results and repair
//! exchanges) is counted again before it is sent and, when it grew too large, its oldest
//! tool results and failed answers are shortened. A request that still does not fit is
//! never sent: the error names the window.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::context::{self, Fit, Tokens};
use super::template::Loaded;
use super::tools::Retrieval;
use crate::core::llm::openai::OpenAi;
use crate::core::llm::state::TokenCount;
use crate::core::llm::{ChatRequest, LlmError, ProviderState};

/// The smallest answer worth asking for: below this a request is refused before sending.
pub const MIN_OUTPUT_TOKENS: u32 = 128;
/// Tokens kept free besides the answer (template tokens a count may miss).
const SAFETY_TOKENS: u64 = 16;

/// The tokens reserved for the answer in a window: the template's `max_tokens`, at most
/// three eighths of the window (but never below the minimum answer).
#[must_use]
pub fn output_reserve(window: u32, max_tokens: u32) -> u32 {
    max_tokens.min((window / 8 * 3).max(MIN_OUTPUT_TOKENS))
}

/// Plans the first prompt of a run within `provider`'s window.
pub async fn plan_first(
    state: &ProviderState,
    provider: &str,
    tpl: &Loaded,
    input: &Value,
    memory: &Retrieval,
    earlier: &[Value],
) -> Fit {
    let limits = state.limits().await;
    let reserve = output_reserve(limits.context_tokens, tpl.template.model.max_tokens);
    let input_budget = limits.context_tokens.saturating_sub(reserve);
    let texts = context::pieces(tpl, input, memory, earlier);
    let (counts, exact) = state.count_texts(&texts).await;
    let chars: usize = texts.iter().map(String::len).sum();
    let total: u64 = counts.iter().sum();
    #[allow(clippy::cast_precision_loss)] // prompt sizes are far below 2^52
    let chars_per_token = chars.max(1) as f64 / total.max(1) as f64;
    let counted: HashMap<String, usize> = texts
        .into_iter()
        .zip(counts)
        .map(|(t, n)| (t, usize::try_from(n).unwrap_or(usize::MAX)))
        .collect();
    let measure = Tokens {
        counted,
        chars_per_token,
    };
    let what = format!(
        "{provider}'s context window of {} tokens ({} kept for the answer)",
        limits.context_tokens, reserve
    );
    let mut fit = context::plan(
        tpl,
        input,
        memory,
        earlier,
        &measure,
        input_budget as usize,
        &what,
    );
    fit.budget = json!({
        "window": limits.context_tokens,
        "window_from": limits.context_source,
        "output_reserve": reserve,
        "input_budget": input_budget,
        "counted": if exact { "server tokenizer" } else { "estimate" },
    });
    fit
}

/// Counts `req` as the server will see it.
async fn count(state: &ProviderState, req: &ChatRequest) -> TokenCount {
    state
        .count_request(req, || OpenAi::wire_messages(req))
        .await
}

/// Fits `req` into the window and sets its `max_tokens`; returns the record of the fit.
pub async fn fit_request(
    state: &ProviderState,
    provider: &str,
    req: &mut ChatRequest,
    max_tokens: u32,
) -> Result<Value, LlmError> {
    let limits = state.limits().await;
    let window = u64::from(limits.context_tokens);
    let reserve = u64::from(output_reserve(limits.context_tokens, max_tokens));
    let mut counted = count(state, req).await;
    let mut trimmed: Vec<(usize, usize)> = Vec::new();
    // Oldest first, never the instructions or the task (messages 0 and 1): the end of a
    // long tool result or failed answer goes first, then the whole of it.
    for i in 2..req.messages.len() {
        let over = (counted.tokens + reserve + SAFETY_TOKENS).saturating_sub(window);
        if over == 0 {
            break;
        }
        let len = req.messages[i].content.len();
        if len < 200 {
            continue;
        }
        #[allow(clippy::cast_precision_loss)] // prompt sizes are far below 2^52
        let chars_per_token = req.chars().max(1) as f64 / counted.tokens.max(1) as f64;
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let cut = ((over as f64 + 32.0) * chars_per_token * 1.2) as usize;
        let keep = len.saturating_sub(cut);
        let keep = if keep < 200 { 0 } else { keep };
        shorten(&mut req.messages[i].content, keep);
        trimmed.push((i, keep));
        counted = count(state, req).await;
    }
    let room = window.saturating_sub(counted.tokens + SAFETY_TOKENS);
    if room < u64::from(MIN_OUTPUT_TOKENS) {
        return Err(LlmError::TooLarge {
            provider: provider.to_string(),
            message: format!(
                "the request needs {} tokens ({}) but the context window is {} tokens ({}), leaving less than {MIN_OUTPUT_TOKENS} for the answer; it was not sent. Raise the server's window (llama.cpp -c / n_ctx), set a smaller input, or route this role to a larger model",
                counted.tokens,
                if counted.exact {
                    "counted by the server"
                } else {
                    "estimated"
                },
                limits.context_tokens,
                limits.context_source,
            ),
        });
    }
    req.max_tokens = max_tokens.min(u32::try_from(room).unwrap_or(u32::MAX));
    Ok(json!({
        "window": limits.context_tokens,
        "window_from": limits.context_source,
        "prompt_tokens": counted.tokens,
        "counted": if counted.exact { "server tokenizer" } else { "estimate" },
        "max_tokens": req.max_tokens,
        "trimmed": trimmed,
    }))
}

/// Applies a recorded fit (resume and replay send exactly what was sent before).
pub fn apply_recorded(req: &mut ChatRequest, fit: &Value) {
    for t in fit["trimmed"].as_array().into_iter().flatten() {
        let (Some(i), Some(keep)) = (t[0].as_u64(), t[1].as_u64()) else {
            continue;
        };
        let (Ok(i), Ok(keep)) = (usize::try_from(i), usize::try_from(keep)) else {
            continue;
        };
        if let Some(m) = req.messages.get_mut(i) {
            shorten(&mut m.content, keep);
        }
    }
    if let Some(n) = fit["max_tokens"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
    {
        req.max_tokens = n;
    }
}

/// Keeps the first `keep` characters of `text` and says how much was cut.
fn shorten(text: &mut String, keep: usize) {
    let len = text.len();
    let at = text.floor_char_boundary(keep.min(len));
    text.truncate(at);
    let removed = len - at;
    if at > 0 {
        text.push('\n');
    }
    let _ = write!(
        text,
        "[{removed} characters cut to fit the model's context window]"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_reserve_scales_with_the_window() {
        assert_eq!(output_reserve(2048, 4000), 768);
        assert_eq!(output_reserve(2048, 500), 500);
        assert_eq!(output_reserve(128_000, 4000), 4000);
        assert_eq!(output_reserve(256, 4000), MIN_OUTPUT_TOKENS);
    }
}
