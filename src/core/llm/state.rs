//! What a remote provider learns and shares while keel runs: its limits (discovered once,
//! again after the server says its window changed), the slots that queue calls inside keel
//! instead of on the server's socket, the structured-output modes it accepts, a token
//! counter (the server's tokenizer where it has one, else a calibrated estimate) and the
//! figures of its last call for the health view.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::discovery::{self, Limits};
use super::structured::{ModeMemory, OutputMode};
use super::{ChatRequest, ProviderConfig};

/// Characters per token assumed before any call has reported its usage (low on purpose:
/// JSON and code run near 3, English prose near 4).
const START_CHARS_PER_TOKEN: f64 = 3.0;
/// Estimates are inflated by this much, since they are not the server's own count.
const ESTIMATE_MARGIN: f64 = 1.15;
/// Tokens a chat template adds around each message (role markers, separators).
const PER_MESSAGE_TOKENS: u64 = 8;

/// A token count and whether the server made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    pub tokens: u64,
    /// `true`: the server's tokenizer; `false`: an estimate with a margin.
    pub exact: bool,
}

/// The last call's figures, for the health view and benchmarks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CallStats {
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    pub mode: Option<OutputMode>,
    pub tokens_out: u64,
}

/// A model slot: calls beyond a provider's `max_concurrent` wait in keel.
#[derive(Debug)]
pub enum Slot {
    Unlimited,
    Free(OwnedSemaphorePermit),
    Busy(Arc<Semaphore>),
}

/// Shared by every worker that uses the provider (the registry hands out one `Arc`).
#[derive(Debug)]
pub struct ProviderState {
    cfg: ProviderConfig,
    root: String,
    client: reqwest::Client,
    limits: tokio::sync::Mutex<Option<Limits>>,
    slots: Mutex<Option<(u32, Arc<Semaphore>)>>,
    waiting: AtomicU32,
    pub modes: ModeMemory,
    configured_mode: OutputMode,
    chars_per_token: Mutex<f64>,
    last: Mutex<Option<CallStats>>,
}

impl ProviderState {
    #[must_use]
    pub fn new(cfg: &ProviderConfig) -> Self {
        ProviderState {
            root: discovery::root_url(&cfg.effective_base_url()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            cfg: cfg.clone(),
            limits: tokio::sync::Mutex::new(None),
            slots: Mutex::new(None),
            waiting: AtomicU32::new(0),
            modes: ModeMemory::default(),
            configured_mode: OutputMode::from_config(&cfg.structured_output).unwrap_or_default(),
            chars_per_token: Mutex::new(START_CHARS_PER_TOKEN),
            last: Mutex::new(None),
        }
    }

    /// The limits, discovered on first use.
    pub async fn limits(&self) -> Limits {
        let mut held = self.limits.lock().await;
        if let Some(l) = held.as_ref() {
            return l.clone();
        }
        let l = discovery::discover(&self.cfg).await;
        tracing::info!(
            base = %self.cfg.effective_base_url(),
            window = l.context_tokens,
            window_from = %l.context_source,
            slots = ?l.max_concurrent,
            server = %l.server,
            "model provider limits"
        );
        *held = Some(l.clone());
        l
    }

    /// The limits if already known (no network).
    #[must_use]
    pub fn known_limits(&self) -> Option<Limits> {
        self.limits.try_lock().ok().and_then(|l| l.clone())
    }

    /// Forgets the limits (the server said its window changed): the next call asks again.
    pub async fn invalidate(&self) {
        *self.limits.lock().await = None;
    }

    /// The structured-output mode to start a call with.
    #[must_use]
    pub fn start_mode(&self, model: &str, with_tools: bool) -> OutputMode {
        self.modes.start(model, with_tools, self.configured_mode)
    }

    /// Calls waiting for a slot right now.
    #[must_use]
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A free slot now, or the semaphore to wait on (`Slot::Unlimited` for hosted APIs).
    pub async fn try_slot(&self) -> Slot {
        let Some(n) = self.limits().await.max_concurrent else {
            return Slot::Unlimited;
        };
        let sem = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slots.as_ref() {
                Some((count, sem)) if *count == n => sem.clone(),
                _ => {
                    let sem = Arc::new(Semaphore::new(n as usize));
                    *slots = Some((n, sem.clone()));
                    sem
                }
            }
        };
        match sem.clone().try_acquire_owned() {
            Ok(p) => Slot::Free(p),
            Err(_) => Slot::Busy(sem),
        }
    }

    /// Waits on a busy provider's slots (counted in [`ProviderState::waiting`]).
    pub async fn wait_slot(&self, sem: Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = sem.acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        permit
    }

    /// Tokens of `req` as the server will see it (`wire_messages` renders the messages
    /// for the server's chat template, only when it counts for us).
    pub async fn count_request(
        &self,
        req: &ChatRequest,
        wire_messages: impl FnOnce() -> Vec<Value>,
    ) -> TokenCount {
        if self.limits().await.tokenizer {
            let wire_messages = wire_messages();
            let applied = self
                .post(
                    "apply-template",
                    &if req.tools.is_empty() {
                        json!({"messages": wire_messages})
                    } else {
                        json!({"messages": wire_messages, "tools": tool_wire(req)})
                    },
                )
                .await;
            if let Some(prompt) = applied.as_ref().and_then(|v| v["prompt"].as_str())
                && let Some(n) = self.tokenize(prompt).await
            {
                return TokenCount {
                    tokens: n,
                    exact: true,
                };
            }
        }
        let chars: usize = req.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + req
                .tools
                .iter()
                .map(|t| t.description.len() + t.parameters.to_string().len() + t.name.len())
                .sum::<usize>();
        TokenCount {
            tokens: self.estimate_chars(chars) + PER_MESSAGE_TOKENS * req.messages.len() as u64,
            exact: false,
        }
    }

    /// Tokens of each text on its own (pieces of a prompt being fitted).
    pub async fn count_texts(&self, texts: &[String]) -> (Vec<u64>, bool) {
        if self.limits().await.tokenizer {
            let mut out = Vec::with_capacity(texts.len());
            for t in texts {
                match self.tokenize(t).await {
                    Some(n) => out.push(n),
                    None => break,
                }
            }
            if out.len() == texts.len() {
                return (out, true);
            }
        }
        (
            texts.iter().map(|t| self.estimate_chars(t.len())).collect(),
            false,
        )
    }

    /// Learns characters per token from the usage a server reported for a request of
    /// `chars` characters, leaning to the lower (safer) side.
    pub fn calibrate(&self, chars: usize, reported_input: u64) {
        if reported_input < 16 || chars == 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss)] // prompt sizes are far below 2^52
        let seen = chars as f64 / reported_input as f64;
        let mut cpt = self
            .chars_per_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = if seen < *cpt {
            seen
        } else {
            0.8 * *cpt + 0.2 * seen
        };
        *cpt = next.clamp(1.0, 6.0);
    }

    fn estimate_chars(&self, chars: usize) -> u64 {
        let cpt = *self
            .chars_per_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let n = (chars as f64 / cpt * ESTIMATE_MARGIN).ceil() as u64;
        n
    }

    /// Records the figures of a finished call.
    pub fn record(&self, stats: CallStats) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stats);
    }

    #[must_use]
    pub fn last(&self) -> Option<CallStats> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn tokenize(&self, text: &str) -> Option<u64> {
        let v = self
            .post(
                "tokenize",
                &json!({"content": text, "add_special": true, "parse_special": true}),
            )
            .await?;
        Some(v["tokens"].as_array()?.len() as u64)
    }

    async fn post(&self, path: &str, body: &Value) -> Option<Value> {
        let resp = self
            .client
            .post(format!("{}/{path}", self.root))
            .json(body)
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json().await.ok()
    }
}

fn tool_wire(req: &ChatRequest) -> Value {
    req.tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_beyond_the_slots_wait_inside_keel_until_one_frees() {
        let cfg = ProviderConfig {
            base_url: "https://api.example.com/v1".into(),
            max_concurrent: 2,
            ..ProviderConfig::default()
        };
        let s = Arc::new(ProviderState::new(&cfg));
        let (Slot::Free(a), Slot::Free(_b)) = (s.try_slot().await, s.try_slot().await) else {
            panic!("two slots")
        };
        let Slot::Busy(sem) = s.try_slot().await else {
            panic!("the third call must wait")
        };
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait_slot(sem).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(s.waiting(), 1);
        assert!(!waiter.is_finished());
        drop(a);
        assert!(waiter.await.unwrap());
        assert_eq!(s.waiting(), 0);
        // A hosted API without a limit never waits.
        let open = ProviderState::new(&ProviderConfig {
            base_url: "https://api.example.com/v1".into(),
            ..ProviderConfig::default()
        });
        assert!(matches!(open.try_slot().await, Slot::Unlimited));
    }

    #[test]
    fn calibration_leans_low_and_estimates_carry_a_margin() {
        let s = ProviderState::new(&ProviderConfig::default());
        let before = s.estimate_chars(3000);
        assert!(before >= 1000, "{before}");
        s.calibrate(3000, 1500); // 2 chars per token seen: trusted at once
        assert!(s.estimate_chars(3000) >= 1500);
        s.calibrate(4000, 1000); // 4 seen: moves up slowly
        let cpt = *s.chars_per_token.lock().unwrap();
        assert!(cpt > 2.0 && cpt < 2.5, "{cpt}");
    }
}
