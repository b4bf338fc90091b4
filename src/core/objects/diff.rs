//! Diffs between versions. A body is rendered one top-level field per block: text with line
//! breaks as one line per line (so a changed sentence shows as a changed line, not a changed
//! blob), other values as pretty JSON. Then a unified line diff (`similar`) compares them.

use rusqlite::Connection;
use serde_json::Value;

use super::version;
use crate::core::error::Result;

/// Unified diff of `kind/id` from version `from` to version `to`. Empty when equal.
pub fn diff(conn: &Connection, kind: &str, id: &str, from: i64, to: i64) -> Result<String> {
    let a = version(conn, kind, id, from)?;
    let b = version(conn, kind, id, to)?;
    Ok(diff_bodies(
        &a.body,
        &b.body,
        &format!("{kind}/{id}@{from}"),
        &format!("{kind}/{id}@{to}"),
    ))
}

/// Unified diff between two bodies, labelled `from_label` and `to_label`. Empty when equal.
#[must_use]
pub fn diff_bodies(a: &Value, b: &Value, from_label: &str, to_label: &str) -> String {
    let (a, b) = (render(a), render(b));
    if a == b {
        return String::new();
    }
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(from_label, to_label)
        .to_string()
}

/// The line-oriented rendering the diff compares: fields in sorted order; multi-line
/// strings as `key: |` followed by their lines indented by two spaces.
#[must_use]
pub fn render(body: &Value) -> String {
    let Value::Object(map) = body else {
        return pretty(body) + "\n";
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = String::new();
    for key in keys {
        match &map[key.as_str()] {
            Value::String(s) if s.contains('\n') => {
                out.push_str(key);
                out.push_str(": |\n");
                // split, not lines(): a trailing line break is a change worth showing.
                for line in s.split('\n') {
                    out.push_str("  ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            value => {
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&pretty(value).replace('\n', "\n  "));
                out.push('\n');
            }
        }
    }
    out
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
