//! Format-preserving edits of a workspace's `config.toml`: one `[providers.NAME]` section is
//! written (or replaced) and `[routing]` tiers are pointed at it, and every other line and
//! comment of the file stays as the operator wrote it.
//!
//! The edit is checked twice before anyone writes it: the result must load with the
//! workspace's own config loader, and the loaded config must equal the old one with exactly
//! the intended changes (so a surprise in the editor can never silently change another
//! setting).

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use crate::core::config::Config;
use crate::core::llm::ProviderConfig;
use crate::core::llm::config::Tier;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file does not load as it is: it is not ours to repair.
    #[error("{0} (fix it first; nothing was changed)")]
    Unreadable(#[source] crate::core::Error),
    #[error("{file}: {message}; nothing was changed")]
    Shape { file: PathBuf, message: String },
    /// A bug guard: the edited text would not load.
    #[error("the edited config would not load ({0}); nothing was written")]
    Invalid(#[source] crate::core::Error),
    /// A bug guard: the edited text loads but changes more than was asked.
    #[error(
        "the edited config changes more than [providers.{name}] and [routing]; nothing was written"
    )]
    Drift { name: String },
}

/// What to write.
#[derive(Debug, Clone)]
pub struct ProviderEdit<'a> {
    pub name: &'a str,
    pub provider: &'a ProviderConfig,
    /// Comment lines written at the top of the section (without the `# `).
    pub notes: &'a [String],
    /// Tiers to route to the provider.
    pub tiers: &'a [Tier],
    /// A short comment after each routing value that changed.
    pub routing_note: &'a str,
}

/// The edited text and the config it loads as.
#[derive(Debug, Clone)]
pub struct Edited {
    pub text: String,
    pub config: Config,
}

/// Applies `edit` to `text` (the contents of `path`).
pub fn set_provider(text: &str, path: &Path, edit: &ProviderEdit<'_>) -> Result<Edited, EditError> {
    let before = Config::from_text(text, path).map_err(EditError::Unreadable)?;
    let shape = |message: String| EditError::Shape {
        file: path.to_path_buf(),
        message,
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| shape(e.message().to_string()))?;
    let placement = placement(&mut doc, edit.name);
    let table = provider_table(edit, placement);
    let providers = doc
        .entry("providers")
        .or_insert_with(implicit_table)
        .as_table_mut()
        .ok_or_else(|| {
            shape(
                "`providers` is not written as [providers.NAME] sections, so keel cannot edit it"
                    .into(),
            )
        })?;
    providers.insert(edit.name, Item::Table(table));
    let routing = doc
        .entry("routing")
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_like_mut()
        .ok_or_else(|| shape("`routing` is not a table".into()))?;
    for tier in edit.tiers {
        route(routing, tier.as_str(), edit.name, edit.routing_note);
    }
    let out = doc.to_string();
    let after = Config::from_text(&out, path).map_err(EditError::Invalid)?;
    let mut expected = before;
    expected
        .providers
        .insert(edit.name.to_string(), edit.provider.clone());
    for tier in edit.tiers {
        let slot = match tier {
            Tier::Triage => &mut expected.routing.triage,
            Tier::Draft => &mut expected.routing.draft,
            Tier::Final => &mut expected.routing.final_,
        };
        *slot = edit.name.to_string();
    }
    if after != expected {
        return Err(EditError::Drift {
            name: edit.name.to_string(),
        });
    }
    Ok(Edited {
        text: out,
        config: after,
    })
}

fn implicit_table() -> Item {
    let mut t = Table::new();
    t.set_implicit(true);
    Item::Table(t)
}

/// Where the section goes and the text above its header.
struct Placement {
    position: Option<isize>,
    prefix: String,
}

/// An existing section keeps its place (and the comments above it); a new one follows the
/// last provider section, else goes just before `[routing]` (taking over the comment
/// paragraphs above `[routing]` that are not directly attached to it, which in the shipped
/// template are the commented provider examples), else at the end.
fn placement(doc: &mut DocumentMut, name: &str) -> Placement {
    let providers = doc.get("providers").and_then(Item::as_table);
    if let Some(old) = providers.and_then(|p| p.get(name)).and_then(Item::as_table) {
        return Placement {
            position: old.position(),
            prefix: prefix_of(old).unwrap_or_else(|| "\n".into()),
        };
    }
    if let Some(last) = providers.and_then(|p| {
        p.iter()
            .filter_map(|(_, item)| item.as_table())
            .filter_map(Table::position)
            .max()
    }) {
        return Placement {
            position: Some(last),
            prefix: "\n".into(),
        };
    }
    if let Some(routing) = doc.get_mut("routing").and_then(Item::as_table_mut)
        && let Some(at) = routing.position()
    {
        let (moved, kept) = split_prefix(&prefix_of(routing).unwrap_or_default());
        routing.decor_mut().set_prefix(format!("\n{kept}"));
        // Ties in position print in document order, and a new `providers` key comes after
        // the table just before `[routing]`, so one less puts the section between them.
        return Placement {
            position: Some(at - 1),
            prefix: moved,
        };
    }
    Placement {
        position: None,
        prefix: "\n".into(),
    }
}

fn prefix_of(t: &Table) -> Option<String> {
    t.decor()
        .prefix()
        .and_then(|p| p.as_str())
        .map(str::to_string)
}

/// Splits the text above a header at its last blank line: what comes before belongs to
/// earlier sections, the rest is attached to the header.
fn split_prefix(prefix: &str) -> (String, String) {
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    match lines.iter().rposition(|l| l.trim().is_empty()) {
        Some(i) => {
            let moved: String = lines[..=i].concat();
            let kept: String = lines[i + 1..].concat();
            if moved.trim().is_empty() {
                ("\n".into(), kept)
            } else {
                (format!("\n{}", moved.trim_start_matches('\n')), kept)
            }
        }
        None => ("\n".into(), prefix.to_string()),
    }
}

/// Settings always written, so the section reads on its own.
const ALWAYS: [&str; 3] = ["kind", "base_url", "model"];

/// The section: kind, address and model, then the settings that differ from the defaults,
/// in the order `ProviderConfig` declares them; the notes on top.
fn provider_table(edit: &ProviderEdit<'_>, placement: Placement) -> Table {
    let mut t = Table::new();
    t.set_position(placement.position);
    t.decor_mut().set_prefix(placement.prefix);
    let wanted = serde_json::to_value(edit.provider).unwrap_or_default();
    let defaults = serde_json::to_value(ProviderConfig::default()).unwrap_or_default();
    let Some(fields) = wanted.as_object() else {
        return t;
    };
    for (key, v) in fields {
        if !ALWAYS.contains(&key.as_str()) && defaults.get(key) == Some(v) {
            continue;
        }
        if let Some(v) = edit_value(v) {
            t.insert(key, Item::Value(v));
        }
    }
    let mut notes = String::new();
    for line in edit
        .notes
        .iter()
        .flat_map(|n| wrap(&n.replace(['\n', '\r'], " "), NOTE_WIDTH))
    {
        notes.push_str("# ");
        notes.push_str(&line);
        notes.push('\n');
    }
    let first = t.iter().next().map(|(k, _)| k.to_string());
    if let Some(mut key) = first.and_then(|k| t.key_mut(&k)) {
        key.leaf_decor_mut().set_prefix(notes);
    }
    t
}

/// Comment lines stay within the template's width (a long URL may still overflow).
const NOTE_WIDTH: usize = 88;

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// A provider setting as `toml_edit` writes it (they are all plain scalars).
fn edit_value(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::String(s) => Some(Value::from(s.as_str())),
        serde_json::Value::Bool(b) => Some(Value::from(*b)),
        serde_json::Value::Number(n) if n.is_f64() => n.as_f64().map(Value::from),
        serde_json::Value::Number(n) => n.as_i64().map(Value::from),
        _ => None,
    }
}

/// Points `tier` at `name`, keeping the comments around the key.
fn route(routing: &mut dyn TableLike, tier: &str, name: &str, note: &str) {
    let suffix = if note.is_empty() {
        String::new()
    } else {
        format!("  # {note}")
    };
    if let Some(item) = routing.get_mut(tier) {
        let prefix = item
            .as_value()
            .and_then(|v| v.decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or(" ")
            .to_string();
        let mut v = Value::from(name);
        v.decor_mut().set_prefix(prefix);
        v.decor_mut().set_suffix(suffix);
        *item = Item::Value(v);
    } else {
        let mut v = Value::from(name);
        v.decor_mut().set_suffix(suffix);
        routing.insert(tier, Item::Value(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::llm::ProviderKind;

    fn local() -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::Openai,
            base_url: "http://127.0.0.1:8080/v1".into(),
            model: "smol".into(),
            ..ProviderConfig::default()
        }
    }

    fn edit<'a>(p: &'a ProviderConfig, notes: &'a [String]) -> ProviderEdit<'a> {
        ProviderEdit {
            name: "local",
            provider: p,
            notes,
            tiers: &[Tier::Draft, Tier::Final],
            routing_note: "keel models connect",
        }
    }

    #[test]
    fn the_template_gains_a_section_before_routing_and_keeps_every_comment() {
        let p = local();
        let notes = vec!["found llama.cpp".to_string()];
        let path = Path::new("config.toml");
        let out = set_provider(crate::core::config::TEMPLATE, path, &edit(&p, &notes)).unwrap();
        for line in crate::core::config::TEMPLATE.lines() {
            let routed = ["draft = ", "final = "].iter().any(|k| line.starts_with(k));
            assert!(
                routed || out.text.contains(line),
                "lost {line:?}\n{}",
                out.text
            );
        }
        let section = out.text.find("\n[providers.local]").unwrap() + 1;
        let examples = out.text.find("# [providers.local]").unwrap();
        let routing = out.text.find("\n[routing]").unwrap();
        assert!(examples < section && section < routing, "{}", out.text);
        assert!(out.text[section..].starts_with(
            "[providers.local]\n# found llama.cpp\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"smol\"\n\n[routing]\n"
        ), "{}", &out.text[section..]);
        assert!(out.text.contains("triage = \"offline\"\ndraft = \"local\"  # keel models connect\nfinal = \"local\"  # keel models connect\n"), "{}", out.text);
        assert_eq!(out.config.providers["local"], p);
        assert_eq!(out.config.routing.triage, "offline");
        assert_eq!(out.config.routing.final_, "local");
    }

    #[test]
    fn an_existing_section_is_replaced_in_place_and_the_rest_is_untouched() {
        let text = "# mine\n[store]\ndurability = \"normal\" # fast\n\n# my local box\n[providers.local]\nkind = \"openai\"\nbase_url = \"http://10.0.0.2:8000/v1\"\nmodel = \"old\"\n# about routing\n[routing]\n# tiers\ndraft = \"local\" # was here\n";
        let p = local();
        let out = set_provider(text, Path::new("c.toml"), &edit(&p, &[])).unwrap();
        assert_eq!(
            out.text,
            "# mine\n[store]\ndurability = \"normal\" # fast\n\n# my local box\n[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"smol\"\n# about routing\n[routing]\n# tiers\ndraft = \"local\"  # keel models connect\nfinal = \"local\"  # keel models connect\n"
        );
    }

    #[test]
    fn a_file_without_routing_gets_one_and_a_broken_file_is_refused() {
        let p = local();
        let out = set_provider("[store]\n", Path::new("c.toml"), &edit(&p, &[])).unwrap();
        assert!(out.text.contains("[providers.local]") && out.text.contains("[routing]"));
        assert_eq!(out.config.routing.draft, "local");
        let err = set_provider("[store\n", Path::new("c.toml"), &edit(&p, &[])).unwrap_err();
        assert!(err.to_string().contains("c.toml:1:"), "{err}");
        let err = set_provider("providers = 3\n", Path::new("c.toml"), &edit(&p, &[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing was changed"), "{err}");
    }

    #[test]
    fn prefixes_split_at_the_last_blank_line() {
        assert_eq!(
            split_prefix("\n# a\n# b\n\n# c\n"),
            ("\n# a\n# b\n\n".to_string(), "# c\n".to_string())
        );
        assert_eq!(
            split_prefix("# c\n"),
            ("\n".to_string(), "# c\n".to_string())
        );
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
    }
}
