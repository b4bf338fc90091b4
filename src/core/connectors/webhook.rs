//! A generic HTTP JSON / webhook target. Configured per target in config.toml:
//! method, URL and body templates (`{{field}}` over the action's arguments), headers whose
//! values come from named environment variables (never from the file), an optional lookup
//! endpoint and an optional compensating call. Every request carries `Idempotency-Key`.
//!
//! Answers: 2xx → done; 409, 422 and other 4xx → permanent (a retry would fail the same
//! way); 429, 5xx, timeouts and connection failures → transient.
//!
//! The client is blocking: call it from a worker thread (`spawn_blocking`), never from an
//! async task.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::template::{self, Escape};
use super::{permanent, transient};
use crate::core::effects::{ActionSpec, Connector, ConnectorError, Reversibility};
use crate::core::error::{Error, Result};
use crate::core::redact;

type CResult<T> = std::result::Result<T, ConnectorError>;

/// One HTTP call: method, URL template, optional JSON body template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCall {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    pub body: Option<String>,
}

fn default_method() -> String {
    "POST".into()
}

fn default_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default = "default_method")]
    pub method: String,
    /// URL template, e.g. `https://hooks.example.com/orders/{{order_id}}`.
    pub url: String,
    /// JSON body template, e.g. `{"email": "{{email}}", "amount": {{amount}}}`.
    /// Without one, the arguments are sent as the body.
    pub body: Option<String>,
    /// Header name → name of the environment variable holding its value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// GET endpoint answering whether the effect with `{{idempotency_key}}` exists:
    /// 200 = yes (the body is the result), 404 = no.
    pub lookup_url: Option<String>,
    /// The call that compensates a done effect (its result is available as `{{result.…}}`).
    pub compensate: Option<HttpCall>,
    /// Declared reversibility; defaults to irreversible (compensable with `compensate`).
    pub reversibility: Option<Reversibility>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug)]
pub struct WebhookConnector {
    name: String,
    action: String,
    cfg: WebhookConfig,
    client: Client,
}

impl WebhookConnector {
    pub fn new(name: &str, cfg: WebhookConfig) -> Result<Self> {
        let method_ok =
            |m: &str| reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).is_ok();
        if !method_ok(&cfg.method)
            || cfg
                .compensate
                .as_ref()
                .is_some_and(|c| !method_ok(&c.method))
        {
            return Err(Error::invalid(
                format!("webhook {name}"),
                "unknown HTTP method",
            ));
        }
        for var in cfg.headers.values() {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::invalid(
                    format!("webhook {name}"),
                    format!(
                        "header values name environment variables; {var:?} is not a variable name"
                    ),
                ));
            }
        }
        let client = Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.clamp(1, 10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::failed(format!("webhook {name}: cannot build the HTTP client"), e)
            })?;
        Ok(WebhookConnector {
            name: name.to_string(),
            action: format!("webhook.{name}"),
            cfg,
            client,
        })
    }

    fn compensation_action(&self) -> String {
        format!("{}.compensate", self.action)
    }

    fn reversibility(&self) -> Reversibility {
        self.cfg
            .reversibility
            .unwrap_or(if self.cfg.compensate.is_some() {
                Reversibility::Compensable
            } else {
                Reversibility::Irreversible
            })
    }

    /// What the policy sees as the target: the URL without its query (which may hold tokens).
    fn target(&self) -> String {
        let url = self
            .cfg
            .url
            .split(['?', '#'])
            .next()
            .unwrap_or(&self.cfg.url);
        format!("webhook {} ({url})", self.name)
    }

    fn check_action(&self, action: &str) -> CResult<()> {
        if action == self.action {
            Ok(())
        } else {
            Err(permanent(
                &self.target(),
                format!("unknown action {action}"),
            ))
        }
    }

    fn send(&self, method: &str, url: &str, body: Option<String>, key: &str) -> CResult<Response> {
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| permanent(&self.target(), format!("unknown HTTP method {method}")))?;
        let mut req = self
            .client
            .request(method, url)
            .header("Idempotency-Key", key)
            .header("Accept", "application/json");
        for (header, var) in &self.cfg.headers {
            // Only the variable's name ever appears in a message.
            let value = std::env::var(var).map_err(|_| {
                permanent(
                    &self.target(),
                    format!("environment variable {var} (for header {header}) is not set"),
                )
            })?;
            req = req.header(header.as_str(), value);
        }
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        req.send().map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect (is the target up?)"
            } else {
                "the request failed"
            };
            transient(&self.target(), what)
        })
    }

    fn url(&self, template_text: &str, args: &Value) -> CResult<String> {
        let url = template::render(template_text, args, Escape::Url)
            .map_err(|e| permanent(&self.target(), e))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(permanent(
                &self.target(),
                "the URL must start with http:// or https://",
            ));
        }
        Ok(url)
    }

    fn body(&self, template_text: Option<&str>, args: &Value) -> CResult<String> {
        let Some(t) = template_text else {
            return Ok(args.to_string());
        };
        let text =
            template::render(t, args, Escape::Json).map_err(|e| permanent(&self.target(), e))?;
        serde_json::from_str::<Value>(&text).map_err(|e| {
            permanent(
                &self.target(),
                format!("the body template does not render to JSON: {e}"),
            )
        })?;
        Ok(text)
    }

    /// Maps an HTTP answer to a result or a classified error.
    fn answer(&self, resp: Response) -> CResult<Value> {
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| json!({"text": text}));
        if status.is_success() {
            return Ok(json!({"status": status.as_u16(), "body": body}));
        }
        let snippet = redact::redact_str(&text.chars().take(200).collect::<String>());
        let code = status.as_u16();
        let message = match code {
            409 => format!("409 Conflict: the target already has a conflicting record ({snippet})"),
            422 => format!("422 Unprocessable: the target rejected the arguments ({snippet})"),
            429 => {
                return Err(transient(
                    &self.target(),
                    format!("429 Too Many Requests ({snippet})"),
                ));
            }
            500..=599 => return Err(transient(&self.target(), format!("{status} ({snippet})"))),
            _ => format!("{status} ({snippet})"),
        };
        Err(permanent(&self.target(), message))
    }
}

impl Connector for WebhookConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec {
            name: self.action.clone(),
            reversibility: self.reversibility(),
            compensation: self
                .cfg
                .compensate
                .as_ref()
                .map(|_| self.compensation_action()),
            description: if self.cfg.description.is_empty() {
                format!("Calls {}", self.target())
            } else {
                self.cfg.description.clone()
            },
        }]
    }

    fn perform(&self, action: &str, args: &Value, key: &str) -> CResult<Value> {
        self.check_action(action)?;
        let url = self.url(&self.cfg.url, args)?;
        let body = self.body(self.cfg.body.as_deref(), args)?;
        let resp = self.send(&self.cfg.method, &url, Some(body), key)?;
        self.answer(resp)
    }

    fn lookup(&self, action: &str, args: &Value, key: &str) -> CResult<Option<Value>> {
        self.check_action(action)?;
        let Some(lookup) = &self.cfg.lookup_url else {
            return Err(permanent(
                &self.target(),
                "no lookup_url is configured, so keel cannot tell whether the call went through",
            ));
        };
        let mut scope = args.clone();
        if let Value::Object(map) = &mut scope {
            map.insert("idempotency_key".into(), Value::String(key.into()));
        } else {
            scope = json!({"idempotency_key": key, "args": args});
        }
        let url = self.url(lookup, &scope)?;
        let resp = self.send("GET", &url, None, key)?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.answer(resp).map(Some)
    }

    fn compensate(&self, action: &str, args: &Value, result: &Value, key: &str) -> CResult<Value> {
        self.check_action(action)?;
        let Some(call) = &self.cfg.compensate else {
            return Err(permanent(
                &self.target(),
                "this webhook declares no compensation; it cannot be undone",
            ));
        };
        let scope = json!({"args": args, "result": result, "idempotency_key": key});
        let url = self.url(&call.url, &scope)?;
        let body = call
            .body
            .as_deref()
            .map(|b| self.body(Some(b), &scope))
            .transpose()?;
        // A distinct key: the compensation is its own effect.
        let resp = self.send(&call.method, &url, body, &format!("{key}:compensate"))?;
        self.answer(resp)
    }
}
