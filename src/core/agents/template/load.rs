//! One template file parsed and checked; errors name `file:line:column`.

use std::path::Path;

use serde_json::Value;

use super::{Loaded, Template, canonical_json};
use crate::core::agents::tools::ToolName;
use crate::core::error::{Error, Result};
use crate::core::toml_text::{line_col, parse};

/// Parses and checks one template file. Errors name <file:line:column>.
pub fn load_text(name: &str, text: &str, path: &Path) -> Result<Loaded> {
    let template: Template = parse(text, path)?;
    let schema = parse_schema(&template, text, path)?;
    let loaded = Loaded {
        name: name.to_string(),
        origin: path.display().to_string(),
        hash: crate::core::canonical::hash_value(&canonical_json(name, &template)),
        template,
        schema,
    };
    check(&loaded, text, path)?;
    Ok(loaded)
}

fn locate(text: &str, path: &Path, needle: &str, message: String) -> Error {
    let (line, column) = text.find(needle).map_or((1, 1), |at| line_col(text, at));
    Error::Config {
        file: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn parse_schema(t: &Template, text: &str, path: &Path) -> Result<Value> {
    let schema: Value = serde_json::from_str(&t.output.schema).map_err(|e| {
        // Point into the file: the schema text starts after `schema = '''`.
        let start = text.find(&t.output.schema).or_else(|| text.find("schema"));
        let base = start.map_or((1, 1), |s| line_col(text, s));
        // serde_json counts columns from 1 but says 0 at the end of the input.
        let (line, column) = if e.line() <= 1 {
            (base.0, base.1 + e.column().saturating_sub(1))
        } else {
            (base.0 + e.line() - 1, e.column().max(1))
        };
        Error::Config {
            file: path.to_path_buf(),
            line,
            column,
            message: format!("output.schema is not valid JSON: {e}"),
        }
    })?;
    jsonschema::validator_for(&schema).map_err(|e| {
        locate(
            text,
            path,
            "schema",
            format!("output.schema is not a valid JSON Schema: {e}"),
        )
    })?;
    Ok(schema)
}

/// Checks that go beyond the types: scopes consistent with the output, sane limits.
fn check(l: &Loaded, text: &str, path: &Path) -> Result<()> {
    let t = &l.template;
    if !t.objects.write.contains(&t.output.kind) {
        return Err(locate(
            text,
            path,
            "kind",
            format!(
                "output.kind {:?} is not in objects.write {:?}: the role could not save its own output",
                t.output.kind, t.objects.write
            ),
        ));
    }
    if t.tools.allowed.contains(&ToolName::ObjectWrite) && t.objects.write.is_empty() {
        return Err(locate(
            text,
            path,
            "allowed",
            "tool object_write is allowed but objects.write is empty".into(),
        ));
    }
    if t.limits.max_steps == 0 {
        return Err(locate(
            text,
            path,
            "max_steps",
            "limits.max_steps must be at least 1".into(),
        ));
    }
    if t.budget.task_usd < 0.0 || t.budget.day_usd < 0.0 {
        return Err(locate(
            text,
            path,
            "usd",
            "budgets cannot be negative".into(),
        ));
    }
    if t.instructions.trim().is_empty() {
        return Err(locate(
            text,
            path,
            "instructions",
            "instructions are empty".into(),
        ));
    }
    Ok(())
}
