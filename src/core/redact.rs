//! Redaction of values that look like secrets, applied before anything reaches the audit
//! log, logs or exports. Matches by key name (`api_key`, token, password…) and by value shape
//! (sk-…, Bearer …, long high-entropy tokens).

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

pub const REDACTED: &str = "[redacted]";

// The patterns are constants checked by the tests below, so they cannot fail at run time.
#[allow(clippy::expect_used)]
static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(api[_-]?key|secret|token|password|passwd|authorization|auth[_-]?header|private[_-]?key|credential)")
        .expect("static pattern")
});

#[allow(clippy::expect_used)]
static SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(sk-[A-Za-z0-9_\-]{16,}",
        r"|sk-ant-[A-Za-z0-9_\-]{16,}",
        r"|(?i:bearer)\s+[A-Za-z0-9._\-]{16,}",
        r"|gh[pousr]_[A-Za-z0-9]{20,}",
        r"|xox[abprs]-[A-Za-z0-9\-]{10,}",
        r"|AKIA[0-9A-Z]{16}",
        r"|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})"
    ))
    .expect("static pattern")
});

/// Returns a copy of `value` with secret-looking fields and substrings replaced.
#[must_use]
pub fn redact_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let redacted = if SECRET_KEY.is_match(k) && !v.is_null() && !is_env_name(v) {
                        Value::String(REDACTED.to_string())
                    } else {
                        redact_value(v)
                    };
                    (k.clone(), redacted)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::String(s) => Value::String(redact_str(s)),
        other => other.clone(),
    }
}

/// Replaces secret-looking substrings in every string of `value`, leaving field names and
/// other values alone. For data that is kept and executed (task inputs), where a field named
/// like a secret (`max_tokens`) must keep its value but a pasted key must not be stored.
#[must_use]
pub fn redact_strings(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_strings(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_strings).collect()),
        Value::String(s) => Value::String(redact_str(s)),
        other => other.clone(),
    }
}

/// Replaces secret-looking substrings of `text`.
#[must_use]
pub fn redact_str(text: &str) -> String {
    SECRET_VALUE.replace_all(text, REDACTED).into_owned()
}

/// Names of environment variables (e.g. `api_key_env = "OPENAI_API_KEY"`) are not secrets.
fn is_env_name(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_and_values_are_redacted() {
        let v = json!({
            "api_key": "abc123",
            "api_key_env": "OPENAI_API_KEY",
            "note": "use sk-abcdefghijklmnopqrstuvwx to call",
            "headers": {"Authorization": "Bearer abcdefghijklmnopqrstu"},
            "count": 3
        });
        let r = redact_value(&v);
        assert_eq!(r["api_key"], REDACTED);
        assert_eq!(r["api_key_env"], "OPENAI_API_KEY");
        assert_eq!(r["note"], "use [redacted] to call");
        assert_eq!(r["headers"]["Authorization"], REDACTED);
        assert_eq!(r["count"], 3);
    }

    #[test]
    fn redact_strings_keeps_field_names_and_numbers() {
        let v =
            json!({"max_tokens": 100, "token": "plain", "note": ["sk-abcdefghijklmnopqrstuvwx"]});
        let r = redact_strings(&v);
        assert_eq!(r["max_tokens"], 100);
        assert_eq!(r["token"], "plain");
        assert_eq!(r["note"][0], REDACTED);
    }
}
