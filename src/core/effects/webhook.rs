//! A small webhook connector on loopback, used by the built-in `webhook` role (and the crash
//! test). It speaks a simple idempotent protocol:
//! - `POST url` with the JSON arguments and an `Idempotency-Key` header performs the effect;
//! - `GET url` with the same header answers 200 (and the stored result) if the key was
//!   applied, 404 if not — which is what lets the ledger resolve an `intended` row;
//! - `DELETE url` with the header compensates it.
//!
//! Only loopback hosts are accepted: real outside targets go through the policy-gated
//! connectors, never through this diagnostic role.

use std::time::Duration;

use serde_json::{Value, json};

use super::connector::{ActionSpec, Connector, ConnectorError, Reversibility};
use crate::core::error::{Error, Result};

pub const ACTION: &str = "webhook.post";

#[derive(Debug, Clone)]
pub struct WebhookConnector {
    url: reqwest::Url,
    client: reqwest::blocking::Client,
}

impl WebhookConnector {
    /// A connector for `url`, which must be an http URL on a loopback host.
    pub fn loopback(url: &str) -> Result<Self> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| Error::invalid("webhook url", e.to_string()))?;
        let host = parsed.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if parsed.scheme() != "http" || !loopback {
            return Err(Error::invalid(
                "webhook url",
                format!("{url}: the built-in webhook role only calls http://127.0.0.1 (loopback)"),
            ));
        }
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| Error::failed("cannot build the HTTP client", e))?;
        Ok(WebhookConnector {
            url: parsed,
            client,
        })
    }

    fn classify(&self, status: reqwest::StatusCode, body: &str) -> ConnectorError {
        let target = self.url.to_string();
        let message = format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        );
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            ConnectorError::Transient { target, message }
        } else {
            ConnectorError::Permanent { target, message }
        }
    }

    fn transport(&self, e: &reqwest::Error) -> ConnectorError {
        ConnectorError::Transient {
            target: self.url.to_string(),
            message: e.to_string(),
        }
    }

    fn answer(&self, resp: reqwest::blocking::Response) -> Result<Value, ConnectorError> {
        let status = resp.status();
        let body = resp.text().map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(self.classify(status, &body));
        }
        Ok(serde_json::from_str(&body)
            .unwrap_or_else(|_| json!({"status": status.as_u16(), "body": body})))
    }
}

impl Connector for WebhookConnector {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec {
            name: ACTION.into(),
            reversibility: Reversibility::Compensable,
            compensation: Some("webhook.delete".into()),
            description: "POST JSON to a loopback webhook".into(),
        }]
    }

    fn perform(&self, _action: &str, args: &Value, key: &str) -> Result<Value, ConnectorError> {
        let resp = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", key)
            .json(args)
            .send()
            .map_err(|e| self.transport(&e))?;
        self.answer(resp)
    }

    fn lookup(
        &self,
        _action: &str,
        _args: &Value,
        key: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let resp = self
            .client
            .get(self.url.clone())
            .header("Idempotency-Key", key)
            .send()
            .map_err(|e| self.transport(&e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.answer(resp).map(Some)
    }

    fn compensate(
        &self,
        _action: &str,
        _args: &Value,
        _result: &Value,
        key: &str,
    ) -> Result<Value, ConnectorError> {
        let resp = self
            .client
            .delete(self.url.clone())
            .header("Idempotency-Key", key)
            .send()
            .map_err(|e| self.transport(&e))?;
        self.answer(resp)
    }
}
