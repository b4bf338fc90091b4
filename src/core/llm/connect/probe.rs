//! Asking a server for its models: the usual local ports, or the operator's URL.

use std::time::Duration;

use serde_json::Value;

use super::{Auth, ConnectError, Found, LOCAL_TIMEOUT, LocalServer, URL_TIMEOUT, candidates};
use crate::core::llm::config::ProviderKind;

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
            ProviderKind::Anthropic => rb.header("x-api-key", &a.key).header(
                "anthropic-version",
                crate::core::llm::anthropic::API_VERSION,
            ),
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
                let body = crate::core::llm::http::scrub(
                    &crate::core::llm::http::error_message(&body),
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
