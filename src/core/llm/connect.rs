//! Finding a model server for `keel models connect`: a base URL given by the operator (with
//! or without its `/v1`), else the usual local ports on 127.0.0.1; listing its models; and
//! one schema-constrained test call through the real provider code.
//!
//! A key is only ever held in memory to make the calls; errors name the variable it came
//! from, never its value.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::config::ProviderKind;
use super::structured::{OutputMode, OutputSchema, first_json_value};
use super::{ChatRequest, LlmError, Message, Provider, Role, Usage};

/// A local server keel looks for, in the order it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalServer {
    pub port: u16,
    pub name: &'static str,
    /// What starts it.
    pub start: &'static str,
}

/// Ollama, llama.cpp, LM Studio, vLLM — on their default ports.
pub const LOCAL_SERVERS: [LocalServer; 4] = [
    LocalServer {
        port: 11434,
        name: "Ollama",
        start: "ollama serve",
    },
    LocalServer {
        port: 8080,
        name: "llama.cpp",
        start: "llama-server -m MODEL.gguf --port 8080",
    },
    LocalServer {
        port: 1234,
        name: "LM Studio",
        start: "lms server start",
    },
    LocalServer {
        port: 8000,
        name: "vLLM",
        start: "vllm serve MODEL",
    },
];

/// How long a local port may take to answer.
const LOCAL_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a given URL may take to answer (a hosted API across the internet).
const URL_TIMEOUT: Duration = Duration::from_secs(15);

/// A key and the variable it was read from.
#[derive(Clone)]
pub struct Auth {
    pub var: String,
    pub key: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth {{ var: {:?}, key: <redacted> }}", self.var)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{}", nothing_local(tried))]
    NothingLocal { tried: Vec<LocalServer> },
    #[error(
        "nothing answered at {url} ({reason}); is the server running, and is that its address?"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "{url} is a hosted API: pass --key-env VAR naming the environment variable that holds its key (the key itself is never written to config.toml)"
    )]
    NeedsKey { url: String },
    #[error(
        "the server at {url} refused the key in ${var} (HTTP {status}); check that ${var} holds a valid key for it"
    )]
    KeyRefused {
        url: String,
        var: String,
        status: u16,
    },
    #[error(
        "the server at {url} wants a key (HTTP {status}): pass --key-env VAR naming the environment variable that holds it"
    )]
    KeyWanted { url: String, status: u16 },
    #[error("{url} answered HTTP {status} to GET …/models{hint}")]
    Http {
        url: String,
        status: u16,
        hint: String,
    },
    #[error("{url}/models did not answer with a model list ({reason})")]
    BadListing { url: String, reason: String },
    #[error(
        "{url} lists no models (Ollama: `ollama pull MODEL` first; llama.cpp: start it with -m MODEL.gguf)"
    )]
    NoModels { url: String },
    #[error("{url} does not serve the model {model:?}; it lists: {}", available.join(", "))]
    UnknownModel {
        url: String,
        model: String,
        available: Vec<String>,
    },
    #[error(
        "{url:?} is not a URL ({reason}); give one like http://127.0.0.1:8080 or https://api.openai.com/v1"
    )]
    BadUrl { url: String, reason: String },
}

fn nothing_local(tried: &[LocalServer]) -> String {
    let ports: Vec<String> = tried
        .iter()
        .map(|t| {
            format!(
                "\n  {:<6} {:<10} start it with `{}`",
                t.port, t.name, t.start
            )
        })
        .collect();
    format!(
        "no model server answered GET /v1/models on 127.0.0.1; tried:{}\nstart one of them, or pass the server's URL: keel models connect http://HOST:PORT",
        ports.concat()
    )
}

/// A server that answered, with the models it lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// The API base (ends in `/v1` for the usual servers), as keel will call it.
    pub base: String,
    pub kind: ProviderKind,
    pub models: Vec<String>,
}

/// The provider kind a URL implies (Anthropic's API speaks its own protocol).
#[must_use]
pub fn infer_kind(url: &str) -> ProviderKind {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if host == "anthropic.com" || host.ends_with(".anthropic.com") {
        ProviderKind::Anthropic
    } else {
        ProviderKind::Openai
    }
}

/// The bases worth trying for `url`: as given when it ends in `/v1` (or has a longer
/// path), else with `/v1` added first, then as given.
pub fn candidates(url: &str) -> Result<Vec<String>, ConnectError> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|e| ConnectError::BadUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConnectError::BadUrl {
            url: url.to_string(),
            reason: "it needs http:// or https:// and a host".into(),
        });
    }
    if trimmed.ends_with("/v1") {
        return Ok(vec![trimmed.to_string()]);
    }
    Ok(vec![format!("{trimmed}/v1"), trimmed.to_string()])
}

/// A name for the provider: `local` for a local server, else from the API's host
/// (`openai`, `anthropic`, `openrouter`, …).
#[must_use]
pub fn default_name(base: &str, local: bool) -> String {
    if local {
        return "local".into();
    }
    let host = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let labels: Vec<&str> = host.split('.').collect();
    let label = if labels.len() >= 2 {
        labels[labels.len() - 2]
    } else {
        host.as_str()
    };
    let name: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    if name.is_empty() {
        "hosted".into()
    } else {
        name
    }
}

/// Whether `name` can name a provider section.
pub fn check_name(name: &str) -> Result<(), String> {
    if name == "offline" {
        return Err("\"offline\" is the built-in provider; choose another --name".into());
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "--name {name:?}: use letters, digits, '-' and '_' only"
        ));
    }
    Ok(())
}

/// Probes the usual local ports in order; the first that lists its models wins.
pub async fn probe_local(servers: &[LocalServer]) -> Result<Found, ConnectError> {
    probe_local_on("127.0.0.1", servers).await
}

/// [`probe_local`] on another host (tests use a loopback port of their own).
pub async fn probe_local_on(host: &str, servers: &[LocalServer]) -> Result<Found, ConnectError> {
    let client = client(LOCAL_TIMEOUT)?;
    for s in servers {
        let base = format!("http://{host}:{}/v1", s.port);
        if let Ok(found) = list_at(&client, &base, ProviderKind::Openai, None).await {
            return Ok(found);
        }
    }
    Err(ConnectError::NothingLocal {
        tried: servers.to_vec(),
    })
}

/// Probes the given URL (and its `/v1`, when it was left out).
pub async fn probe_url(
    url: &str,
    kind: ProviderKind,
    auth: Option<&Auth>,
) -> Result<Found, ConnectError> {
    let client = client(URL_TIMEOUT)?;
    let mut first_err = None;
    for base in candidates(url)? {
        match list_at(&client, &base, kind, auth).await {
            Ok(found) => return Ok(found),
            // Not found here: the other candidate may be the API.
            Err(e @ ConnectError::Http { status: 404, .. }) => {
                first_err.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_err.unwrap_or_else(|| ConnectError::Unreachable {
        url: url.to_string(),
        reason: "no address to try".into(),
    }))
}

fn client(timeout: Duration) -> Result<reqwest::Client, ConnectError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConnectError::Unreachable {
            url: String::new(),
            reason: e.to_string(),
        })
}

async fn list_at(
    client: &reqwest::Client,
    base: &str,
    kind: ProviderKind,
    auth: Option<&Auth>,
) -> Result<Found, ConnectError> {
    let url = format!("{base}/models");
    let mut rb = client.get(&url);
    if let Some(a) = auth {
        rb = match kind {
            ProviderKind::Anthropic => rb
                .header("x-api-key", &a.key)
                .header("anthropic-version", super::anthropic::API_VERSION),
            _ => rb.bearer_auth(&a.key),
        };
    }
    let resp = rb.send().await.map_err(|e| ConnectError::Unreachable {
        url: base.to_string(),
        reason: reason(&e),
    })?;
    let status = resp.status().as_u16();
    match (status, auth) {
        (401 | 403, Some(a)) => {
            return Err(ConnectError::KeyRefused {
                url: base.to_string(),
                var: a.var.clone(),
                status,
            });
        }
        (401 | 403, None) => {
            return Err(ConnectError::KeyWanted {
                url: base.to_string(),
                status,
            });
        }
        (200..=299, _) => {}
        _ => {
            let hint = if status == 404 {
                ": there is no OpenAI-compatible API at that address (its base URL usually ends in /v1)".to_string()
            } else {
                // The body may quote the request; keep it short and never echo a key.
                let body = resp.text().await.unwrap_or_default();
                let body = super::http::scrub(
                    &super::http::error_message(&body),
                    auth.map(|a| a.key.as_str()),
                );
                if body.is_empty() {
                    String::new()
                } else {
                    format!(": {body}")
                }
            };
            return Err(ConnectError::Http {
                url: base.to_string(),
                status,
                hint,
            });
        }
    }
    let listed: Value = resp.json().await.map_err(|e| ConnectError::BadListing {
        url: base.to_string(),
        reason: format!("not JSON: {e}"),
    })?;
    let models = model_ids(&listed).ok_or_else(|| ConnectError::BadListing {
        url: base.to_string(),
        reason: "no `data` list".into(),
    })?;
    if models.is_empty() {
        return Err(ConnectError::NoModels {
            url: base.to_string(),
        });
    }
    Ok(Found {
        base: base.to_string(),
        kind,
        models,
    })
}

fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused".into()
    } else {
        e.to_string()
    }
}

/// The ids of `{"data": [{"id": …}, …]}` (`OpenAI`, Anthropic, Ollama, llama.cpp, vLLM, LM
/// Studio all answer this shape).
#[must_use]
pub fn model_ids(listed: &Value) -> Option<Vec<String>> {
    let data = listed.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
    )
}

/// Words in the ids of models that do not chat (hosted lists carry them too).
const NOT_CHAT: [&str; 8] = [
    "embed",
    "whisper",
    "tts",
    "dall-e",
    "moderation",
    "image",
    "audio",
    "rerank",
];

/// The model to use: the one asked for (when listed; Ollama's `:latest` may be left out),
/// else the first that looks like a chat model (hosted lists carry embedding, speech and
/// image models too), else the first.
pub fn pick_model(found: &Found, wanted: Option<&str>) -> Result<String, ConnectError> {
    if let Some(w) = wanted {
        let latest = format!("{w}:latest");
        return found
            .models
            .iter()
            .find(|m| *m == w || **m == latest)
            .cloned()
            .ok_or_else(|| ConnectError::UnknownModel {
                url: found.base.clone(),
                model: w.to_string(),
                available: found.models.iter().take(20).cloned().collect(),
            });
    }
    let chat = found
        .models
        .iter()
        .find(|m| !NOT_CHAT.iter().any(|n| m.to_ascii_lowercase().contains(n)));
    chat.or_else(|| found.models.first())
        .cloned()
        .ok_or_else(|| ConnectError::NoModels {
            url: found.base.clone(),
        })
}

/// The schema of the test call's answer.
#[must_use]
pub fn check_schema() -> Value {
    json!({
        "type": "object",
        "required": ["ok"],
        "properties": {"ok": {"type": "boolean"}},
        "additionalProperties": false
    })
}

/// What the test call showed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestCall {
    pub model: String,
    /// How the shape was asked for in the end (`json_schema` when the server enforced it).
    pub output_mode: Option<OutputMode>,
    pub latency_ms: u64,
    pub first_token_ms: Option<u64>,
    pub usage: Usage,
    /// The answer as the model wrote it.
    pub answer: String,
    /// The first JSON value in it.
    pub parsed: Option<Value>,
    /// Whether that value passes [`check_schema`].
    pub matches_schema: bool,
}

/// One small schema-constrained call.
pub async fn test_call(provider: &dyn Provider) -> Result<TestCall, LlmError> {
    let schema = check_schema();
    let req = ChatRequest {
        model: provider.model().to_string(),
        messages: vec![
            Message::new(
                Role::System,
                "You check that a model server works. Answer with one JSON object and nothing else: {\"ok\": true}",
            ),
            Message::new(Role::User, "Are you working? Answer {\"ok\": true}."),
        ],
        tools: Vec::new(),
        json_output: true,
        max_tokens: 32,
        context: Value::Null,
        output: Some(OutputSchema {
            name: "connect_check".into(),
            schema: schema.clone(),
        }),
    };
    let started = Instant::now();
    let cancel = CancellationToken::new();
    let resp = provider.chat(&req, &|_| {}, &cancel).await?;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let parsed = first_json_value(&resp.text).map(|(v, _)| v);
    let matches_schema = parsed.as_ref().is_some_and(|v| {
        jsonschema::validator_for(&schema).is_ok_and(|validator| validator.is_valid(v))
    });
    Ok(TestCall {
        model: if resp.model.is_empty() {
            req.model
        } else {
            resp.model.clone()
        },
        output_mode: resp.output_mode,
        latency_ms,
        first_token_ms: resp.first_token_ms,
        usage: resp.usage,
        answer: resp.text,
        parsed,
        matches_schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_and_without_v1() {
        assert_eq!(
            candidates("http://127.0.0.1:8080").unwrap(),
            vec!["http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"]
        );
        assert_eq!(
            candidates("http://127.0.0.1:8080/v1/").unwrap(),
            vec!["http://127.0.0.1:8080/v1"]
        );
        assert!(matches!(
            candidates("127.0.0.1:8080"),
            Err(ConnectError::BadUrl { .. })
        ));
        assert_eq!(
            infer_kind("https://api.anthropic.com/v1"),
            ProviderKind::Anthropic
        );
        assert_eq!(
            infer_kind("https://openrouter.ai/api/v1"),
            ProviderKind::Openai
        );
    }

    #[test]
    fn names_follow_the_host() {
        assert_eq!(default_name("http://127.0.0.1:8080/v1", true), "local");
        assert_eq!(default_name("https://api.openai.com/v1", false), "openai");
        assert_eq!(
            default_name("https://api.anthropic.com/v1", false),
            "anthropic"
        );
        assert_eq!(
            default_name("https://openrouter.ai/api/v1", false),
            "openrouter"
        );
        assert!(check_name("offline").is_err());
        assert!(check_name("my box").is_err());
        assert!(check_name("gpu-box_2").is_ok());
    }

    #[test]
    fn the_model_is_the_one_asked_for_or_the_first_chat_model() {
        let found = Found {
            base: "http://x/v1".into(),
            kind: ProviderKind::Openai,
            models: vec![
                "text-embedding-3-small".into(),
                "gpt-4o-mini".into(),
                "llama3.1:latest".into(),
            ],
        };
        assert_eq!(pick_model(&found, None).unwrap(), "gpt-4o-mini");
        assert_eq!(
            pick_model(&found, Some("llama3.1")).unwrap(),
            "llama3.1:latest"
        );
        let err = pick_model(&found, Some("nope")).unwrap_err().to_string();
        assert!(err.contains("gpt-4o-mini"), "{err}");
        assert!(model_ids(&json!({"object": "list"})).is_none());
    }

    #[test]
    fn nothing_local_lists_the_ports_and_what_to_start() {
        let msg = ConnectError::NothingLocal {
            tried: LOCAL_SERVERS.to_vec(),
        }
        .to_string();
        for s in LOCAL_SERVERS {
            assert!(
                msg.contains(&s.port.to_string()) && msg.contains(s.start),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_key_never_shows_in_debug() {
        let a = Auth {
            var: "K".into(),
            key: "sk-secret".into(),
        };
        assert!(!format!("{a:?}").contains("sk-secret"));
    }
}
