//! `{{field}}` substitution over a JSON object of arguments. Nothing else: no logic, no
//! loops, so a template cannot do anything surprising. Dotted names reach into objects
//! (`{{customer.email}}`); a missing field is an error, never an empty string.

use std::fmt::Write as _;

use serde_json::Value;

/// How a substituted value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON document: strings are JSON-escaped without quotes (write `"{{x}}"`),
    /// numbers, booleans, objects and arrays are inserted as JSON.
    Json,
    /// Inside a URL: percent-encoded.
    Url,
}

/// Renders `template` with `args`.
pub fn render(template: &str, args: &Value, escape: Escape) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "unclosed {{{{ in template near {:?}",
                truncate(&rest[start..])
            )
        })?;
        let name = after[..end].trim();
        let value = lookup(args, name).ok_or_else(|| {
            format!("the template uses {{{{{name}}}}} but the arguments have no `{name}`")
        })?;
        out.push_str(&encode(value, escape));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn truncate(s: &str) -> &str {
    &s[..s.floor_char_boundary(24)]
}

fn lookup<'a>(args: &'a Value, name: &str) -> Option<&'a Value> {
    if name.is_empty() {
        return None;
    }
    name.split('.').try_fold(args, |v, part| v.get(part))
}

fn encode(value: &Value, escape: Escape) -> String {
    match (escape, value) {
        (Escape::Json, Value::String(s)) => {
            let quoted = Value::String(s.clone()).to_string();
            quoted[1..quoted.len() - 1].to_string()
        }
        (Escape::Json, other) => other.to_string(),
        (Escape::Url, Value::String(s)) => percent_encode(s),
        (Escape::Url, other) => percent_encode(&other.to_string()),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
#[must_use]
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn substitutes_and_escapes() {
        let args = json!({"title": "Say \"hi\"\n", "n": 3, "c": {"email": "a b@x.io"}});
        let body = render(r#"{"t": "{{title}}", "n": {{ n }}}"#, &args, Escape::Json).unwrap();
        let parsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed, json!({"t": "Say \"hi\"\n", "n": 3}));
        let url = render("https://h/x?to={{c.email}}", &args, Escape::Url).unwrap();
        assert_eq!(url, "https://h/x?to=a%20b%40x.io");
    }

    #[test]
    fn missing_field_is_an_error() {
        let err = render("{{nope}}", &json!({}), Escape::Json).unwrap_err();
        assert!(err.contains("`nope`"), "{err}");
        assert!(render("{{open", &json!({}), Escape::Json).is_err());
    }
}
