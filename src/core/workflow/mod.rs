//! Workflow files (`agents/*.workflow.toml`): named stages, each run by a role (or an
//! operator approval), chained by `after` into a graph. A workflow task spawns each stage
//! as a child once its upstream stages succeeded (fan-out) and waits for its children
//! (fan-in). Cycles, unknown stages and unknown roles are refused at submission; parse
//! errors name `file:line:column`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::core::error::{Error, Result};
use crate::core::queue::RoleCatalog;
use crate::core::toml_text::{line_col, toml_error};

/// Workflows shipped with keel (a workspace file of the same name replaces one).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "agents/content.workflow.toml",
        include_str!("../../../agents/content.workflow.toml"),
    ),
    (
        "agents/invoicing.workflow.toml",
        include_str!("../../../agents/invoicing.workflow.toml"),
    ),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    /// In file order.
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    /// The role that runs it; `None` for an approval stage.
    pub role: Option<String>,
    pub approval: bool,
    pub after: Vec<String>,
    /// Merged over the workflow input to make the stage's task input.
    pub input: Value,
    /// Where the stage is declared, for errors.
    pub location: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    stage: Vec<StageFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StageFile {
    name: toml::Spanned<String>,
    role: Option<String>,
    #[serde(default)]
    approval: bool,
    after: Option<Vec<String>>,
    input: Option<toml::Value>,
}

impl Workflow {
    /// Parses a workflow file: TOML errors, duplicate or unknown stages and cycles all name
    /// `path:line:column`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file: File = toml::from_str(text).map_err(|e| toml_error(&e, text, path))?;
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            Error::Config {
                file: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        if file.stage.is_empty() {
            return Err(at(
                0..0,
                format!("workflow {:?} has no [[stage]]", file.name),
            ));
        }
        let mut stages = Vec::new();
        let mut seen = BTreeSet::new();
        let mut previous: Option<String> = None;
        for s in file.stage {
            let span = s.name.span();
            let name = s.name.into_inner();
            if !seen.insert(name.clone()) {
                return Err(at(span, format!("stage {name:?} is declared twice")));
            }
            if s.role.is_none() && !s.approval {
                return Err(at(
                    span,
                    format!("stage {name:?} needs a role (or approval = true)"),
                ));
            }
            let (line, column) = line_col(text, span.start);
            let input = s
                .input
                .map(|v| serde_json::to_value(v).map_err(|e| at(span.clone(), e.to_string())))
                .transpose()?
                .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
            stages.push(Stage {
                after: s
                    .after
                    .unwrap_or_else(|| previous.clone().into_iter().collect()),
                role: s.role,
                approval: s.approval,
                input,
                location: format!("{}:{line}:{column}", path.display()),
                name: name.clone(),
            });
            previous = Some(name);
        }
        let wf = Workflow {
            name: file.name,
            description: file.description,
            stages,
        };
        wf.check_graph()?;
        Ok(wf)
    }

    fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Refuses unknown `after` references and cycles.
    fn check_graph(&self) -> Result<()> {
        for s in &self.stages {
            for dep in &s.after {
                if self.stage(dep).is_none() {
                    return Err(Error::invalid(
                        format!("workflow {:?}", self.name),
                        format!(
                            "{}: stage {:?} runs after unknown stage {dep:?}",
                            s.location, s.name
                        ),
                    ));
                }
            }
        }
        let mut done = BTreeSet::new();
        for s in &self.stages {
            visit(self, s, &mut Vec::new(), &mut done)?;
        }
        Ok(())
    }

    /// Every role the workflow uses must exist.
    pub fn check_roles(&self, catalog: &RoleCatalog) -> Result<()> {
        for s in &self.stages {
            if let Some(role) = &s.role
                && !catalog.contains(role)
            {
                return Err(Error::invalid(
                    format!("workflow {:?}", self.name),
                    format!(
                        "{}: stage {:?} uses unknown role {role:?}",
                        s.location, s.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

// Depth-first search; a stage met again while on the stack closes a cycle.
fn visit<'a>(
    wf: &'a Workflow,
    s: &'a Stage,
    stack: &mut Vec<&'a str>,
    done: &mut BTreeSet<&'a str>,
) -> Result<()> {
    if done.contains(s.name.as_str()) {
        return Ok(());
    }
    if let Some(pos) = stack.iter().position(|n| *n == s.name) {
        let mut cycle: Vec<&str> = stack[pos..].to_vec();
        cycle.push(&s.name);
        return Err(Error::invalid(
            format!("workflow {:?}", wf.name),
            format!("{}: cycle {}", s.location, cycle.join(" → ")),
        ));
    }
    stack.push(&s.name);
    for dep in &s.after {
        if let Some(d) = wf.stage(dep) {
            visit(wf, d, stack, done)?;
        }
    }
    stack.pop();
    done.insert(&s.name);
    Ok(())
}

/// Loads the built-in workflows, then `dir/*.workflow.toml` (which replace built-ins of the
/// same name). A file that fails keeps its error under its file stem.
pub fn load_all(
    dir: &Path,
    _catalog: &RoleCatalog,
) -> BTreeMap<String, std::result::Result<Arc<Workflow>, String>> {
    let mut out = BTreeMap::new();
    let mut add = |text: &str, path: &Path| {
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .trim_end_matches(".workflow.toml")
            .to_string();
        match Workflow::parse(text, path) {
            Ok(wf) => {
                out.insert(wf.name.clone(), Ok(Arc::new(wf)));
            }
            Err(e) => {
                out.insert(stem, Err(e.to_string()));
            }
        }
    };
    for (path, text) in BUILTIN {
        add(text, Path::new(path));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.to_string_lossy().ends_with(".workflow.toml") {
                match std::fs::read_to_string(&path) {
                    Ok(text) => add(&text, &path),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot read workflow");
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_content_workflow_parses_as_a_chain() {
        let wf = Workflow::parse(BUILTIN[0].1, Path::new(BUILTIN[0].0)).unwrap();
        let names: Vec<_> = wf.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["research", "write", "edit", "publish"]);
        assert_eq!(wf.stages[3].after, ["edit"]);
        // The approval happens at the publish gate (policy), not in a stage of its own.
        assert!(!wf.stages[3].approval);
    }

    #[test]
    fn cycles_and_bad_files_are_located() {
        let text = "name = \"loop\"\n[[stage]]\nname = \"a\"\nrole = \"x\"\nafter = [\"b\"]\n[[stage]]\nname = \"b\"\nrole = \"x\"\n";
        let err = Workflow::parse(text, Path::new("agents/loop.workflow.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cycle"), "{err}");
        assert!(err.contains("agents/loop.workflow.toml:"), "{err}");
        let err = Workflow::parse("name = \"x\"\n[[stage]]\nnom = 1\n", Path::new("w.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("w.toml:"), "{err}");
        let err = Workflow::parse(
            "name = \"x\"\n[[stage]]\nname = \"a\"\nrole = \"r\"\nafter = [\"zz\"]\n",
            Path::new("w.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown stage \"zz\""), "{err}");
    }

    #[test]
    fn unknown_roles_are_refused() {
        let wf = Workflow::parse(BUILTIN[0].1, Path::new("c.toml")).unwrap();
        let err = wf
            .check_roles(&RoleCatalog::builtin())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown role \"researcher\""), "{err}");
    }
}
