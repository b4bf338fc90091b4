//! Object references in a task input: `{"contract": "northwind-2026"}` (or
//! `"contract/northwind-2026"`) names an object the role may read. The runtime reads it once
//! when the run starts, records what it read (kind, id, version, body) in the context step,
//! and gives the model the body in place of the name, so a resumed or replayed run sees
//! exactly the same object even if it has changed since.

use serde_json::{Value, json};

use super::template::Loaded;
use super::tools::{CallContext, ToolHost};

/// The objects the input names, for kinds in the role's read scope. A name that finds no
/// object is left as it is (the model sees the name and can say what is missing).
pub fn resolve(host: &dyn ToolHost, cx: &CallContext, tpl: &Loaded, input: &Value) -> Vec<Value> {
    let Some(fields) = input.as_object() else {
        return Vec::new();
    };
    let readable = &tpl.template.objects.read;
    let mut found = Vec::new();
    for (key, value) in fields {
        let Some(name) = value.as_str() else { continue };
        if !readable.iter().any(|k| k == key) {
            continue;
        }
        let id = name
            .strip_prefix(key.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(name);
        match host.object_read(cx, key, id) {
            Ok(Some((version, body))) => found.push(json!({
                "field": key, "kind": key, "id": id, "version": version, "body": body,
            })),
            Ok(None) => {}
            Err(e) => tracing::warn!(kind = %key, id, error = ?e, "referenced object unreadable"),
        }
    }
    found
}

/// The input with each resolved name replaced by its object's body, and the reference kept
/// beside it (`<field>_ref`: `kind/id@version`).
#[must_use]
pub fn apply(input: &Value, objects: &[Value]) -> Value {
    let mut out = input.clone();
    for o in objects {
        let Some(field) = o["field"].as_str() else {
            continue;
        };
        out[field] = o["body"].clone();
        out[format!("{field}_ref")] = json!(format!(
            "{}/{}@{}",
            o["kind"].as_str().unwrap_or(""),
            o["id"].as_str().unwrap_or(""),
            o["version"]
        ));
    }
    out
}
