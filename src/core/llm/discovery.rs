//! What a model server can take: its context window, how many calls it serves at once and
//! whether it can count tokens for us. Config wins; otherwise the server is asked
//! (llama.cpp `/props`, Ollama `/api/show`, vLLM's `max_model_len` in `/v1/models`); a
//! server that tells nothing gets conservative defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ProviderConfig;
use super::config::ProviderKind;

/// The window assumed when nothing better is known.
pub const DEFAULT_CONTEXT_TOKENS: u32 = 4096;
/// How long discovery waits for each probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A provider's limits, each with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub context_tokens: u32,
    pub context_source: String,
    /// Calls at once; `None` is unlimited.
    pub max_concurrent: Option<u32>,
    pub slots_source: String,
    /// `llama.cpp`, `ollama`, `vllm`, `hosted`, or `openai-compatible` when unknown.
    pub server: String,
    /// The server counts tokens itself (llama.cpp `/apply-template` + `/tokenize`).
    pub tokenizer: bool,
}

/// The base URL without its API suffix (`…/v1`), where llama.cpp and Ollama answer.
#[must_use]
pub fn root_url(base: &str) -> String {
    let b = base.trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b).to_string()
}

/// Whether `base` points at this machine or a private network (a "local server").
#[must_use]
pub fn is_local(base: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || ip.is_unique_local(),
        Err(_) => {
            let host = host.to_ascii_lowercase();
            let suffix = host.rsplit('.').next().unwrap_or_default();
            host == "localhost" || suffix == "local" || suffix == "lan" || !host.contains('.')
        }
    }
}

/// Asks the server what it can take (each probe bounded), then fills the gaps.
pub async fn discover(cfg: &ProviderConfig) -> Limits {
    let base = cfg.effective_base_url();
    let local = is_local(&base);
    let mut found = if local && cfg.kind != ProviderKind::Anthropic {
        probe(&base, &cfg.model).await
    } else {
        Probed::default()
    };
    if !local {
        found.server = Some("hosted".into());
    }
    settle(cfg, local, found)
}

/// What the probes learned.
#[derive(Debug, Default, Clone)]
pub(crate) struct Probed {
    pub server: Option<String>,
    pub context: Option<(u32, String)>,
    pub slots: Option<u32>,
    pub tokenizer: bool,
}

/// Config first, then what was found, then defaults.
pub(crate) fn settle(cfg: &ProviderConfig, local: bool, found: Probed) -> Limits {
    let (context_tokens, context_source) = if cfg.context_tokens > 0 {
        (cfg.context_tokens, "config".to_string())
    } else if let Some((n, src)) = found.context {
        (n, src)
    } else if !local {
        match cfg.kind {
            ProviderKind::Anthropic => (200_000, "hosted default".to_string()),
            _ => (128_000, "hosted default".to_string()),
        }
    } else {
        (DEFAULT_CONTEXT_TOKENS, "default".to_string())
    };
    let (max_concurrent, slots_source) = if cfg.max_concurrent > 0 {
        (Some(cfg.max_concurrent), "config".to_string())
    } else if let Some(n) = found.slots {
        (Some(n.max(1)), "llama.cpp /props total_slots".to_string())
    } else if local {
        (Some(1), "default for a local server".to_string())
    } else {
        (None, "hosted: unlimited".to_string())
    };
    Limits {
        context_tokens,
        context_source,
        max_concurrent,
        slots_source,
        server: found
            .server
            .unwrap_or_else(|| "openai-compatible".to_string()),
        tokenizer: found.tokenizer,
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> Option<Value> {
    let resp = client.post(url).json(body).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

fn as_u32(v: Option<&Value>) -> Option<u32> {
    v.and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

async fn probe(base: &str, model: &str) -> Probed {
    let Ok(client) = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build() else {
        return Probed::default();
    };
    let root = root_url(base);
    // llama.cpp: `/props` has the per-slot window and the slot count.
    if let Some(props) = get_json(&client, &format!("{root}/props")).await
        && let Some(n) = as_u32(props.pointer("/default_generation_settings/n_ctx"))
    {
        let tokenizer = post_json(
            &client,
            &format!("{root}/tokenize"),
            &json!({"content": "a"}),
        )
        .await
        .is_some_and(|v| v.get("tokens").is_some());
        return Probed {
            server: Some("llama.cpp".into()),
            context: Some((n, "llama.cpp /props n_ctx".into())),
            slots: as_u32(props.get("total_slots")),
            tokenizer,
        };
    }
    // Ollama: the runtime window is `num_ctx` when the model sets one, else Ollama's default.
    if get_json(&client, &format!("{root}/api/version"))
        .await
        .is_some()
    {
        let shown = post_json(
            &client,
            &format!("{root}/api/show"),
            &json!({"model": model}),
        )
        .await;
        return Probed {
            server: Some("ollama".into()),
            context: shown.as_ref().map(ollama_window),
            slots: None,
            tokenizer: false,
        };
    }
    // vLLM lists `max_model_len` with each model.
    if let Some(models) = get_json(&client, &format!("{base}/models")).await {
        let entry = models["data"].as_array().and_then(|d| {
            d.iter()
                .find(|m| m["id"].as_str() == Some(model))
                .or_else(|| d.first())
        });
        if let Some(n) = as_u32(entry.and_then(|m| m.get("max_model_len"))) {
            return Probed {
                server: Some("vllm".into()),
                context: Some((n, "vLLM /v1/models max_model_len".into())),
                slots: None,
                tokenizer: false,
            };
        }
    }
    Probed::default()
}

/// Ollama's window: `num_ctx` in the model's parameters, else its default (4096) capped by
/// what the model was trained for.
pub(crate) fn ollama_window(shown: &Value) -> (u32, String) {
    let params = shown["parameters"].as_str().unwrap_or_default();
    if let Some(n) = params.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some("num_ctx"))
            .then(|| parts.next()?.parse::<u32>().ok())
            .flatten()
    }) {
        return (n, "ollama /api/show num_ctx".into());
    }
    let trained = shown["model_info"].as_object().and_then(|info| {
        info.iter()
            .find(|(k, _)| k.ends_with(".context_length"))
            .and_then(|(_, v)| as_u32(Some(v)))
    });
    (
        trained.map_or(4096, |t| t.min(4096)),
        "ollama default num_ctx".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_hosted_are_told_apart() {
        assert!(is_local("http://127.0.0.1:8080/v1"));
        assert!(is_local("http://localhost:11434/v1"));
        assert!(is_local("http://192.168.1.20:8000/v1"));
        assert!(is_local("http://gpu-box:8000/v1"));
        assert!(!is_local("https://api.openai.com/v1"));
        assert!(!is_local("https://openrouter.ai/api/v1"));
        assert_eq!(
            root_url("http://127.0.0.1:8080/v1/"),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn config_beats_discovery_beats_defaults() {
        let mut cfg = ProviderConfig::default();
        let found = Probed {
            server: Some("llama.cpp".into()),
            context: Some((2048, "llama.cpp /props n_ctx".into())),
            slots: Some(1),
            tokenizer: true,
        };
        let l = settle(&cfg, true, found.clone());
        assert_eq!((l.context_tokens, l.max_concurrent), (2048, Some(1)));
        cfg.context_tokens = 1024;
        cfg.max_concurrent = 3;
        let l = settle(&cfg, true, found);
        assert_eq!((l.context_tokens, l.max_concurrent), (1024, Some(3)));
        assert_eq!(l.context_source, "config");
        let l = settle(&ProviderConfig::default(), true, Probed::default());
        assert_eq!(
            (l.context_tokens, l.max_concurrent),
            (DEFAULT_CONTEXT_TOKENS, Some(1))
        );
        let l = settle(&ProviderConfig::default(), false, Probed::default());
        assert_eq!(l.max_concurrent, None);
    }

    #[test]
    fn ollama_window_prefers_num_ctx() {
        let shown = json!({"parameters": "stop \"<|im_end|>\"\nnum_ctx 8192", "model_info": {"llama.context_length": 131_072}});
        assert_eq!(ollama_window(&shown).0, 8192);
        let shown = json!({"model_info": {"qwen2.context_length": 32768}});
        assert_eq!(ollama_window(&shown).0, 4096);
    }
}
