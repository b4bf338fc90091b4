//! Finding a model server for `keel models connect`: a base URL given by the operator (with
//! or without its `/v1`), else the usual local ports on 127.0.0.1; listing its models; and
//! one schema-constrained test call through the real provider code.
//!
//! A key is only ever held in memory to make the calls; errors name the variable it came
//! from, never its value.

mod pick;
mod probe;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::config::ProviderKind;

pub use pick::{TestCall, check_schema, pick_model, test_call};
pub use probe::{model_ids, probe_local, probe_local_on, probe_url};

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
