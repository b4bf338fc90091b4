//! Every template of a workspace: the shipped ones, overridden or added to by the files in
//! its `agents/` directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Loaded, SHIPPED, load_text};
use crate::core::error::{Error, Result};

/// All templates: shipped ones, then the workspace's `agents/*.toml` (which override).
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub by_name: BTreeMap<String, Loaded>,
    /// Workspace files that failed to load (role → `file:line:column: message`). Only
    /// their role is unavailable (a broken override does not fall back to the shipped
    /// template: the operator meant to change it).
    pub broken: BTreeMap<String, String>,
}

impl Templates {
    /// Only the shipped templates.
    pub fn shipped() -> Result<Self> {
        let mut by_name = BTreeMap::new();
        for (name, text) in SHIPPED {
            let path = PathBuf::from(format!("agents/{name}.toml"));
            let mut l = load_text(name, text, &path)?;
            l.origin = "shipped".into();
            by_name.insert((*name).to_string(), l);
        }
        Ok(Templates {
            by_name,
            broken: BTreeMap::new(),
        })
    }

    /// Shipped templates overlaid with `dir/*.toml` (a missing directory adds nothing).
    /// A bad file makes only its own role unavailable, with the error kept for `get`.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut all = Self::shipped()?;
        for (name, path) in workspace_files(dir)? {
            let loaded = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(&path, e))
                .and_then(|text| load_text(&name, &text, &path));
            match loaded {
                Ok(l) => {
                    all.broken.remove(&name);
                    all.by_name.insert(name, l);
                }
                Err(e) => {
                    tracing::error!(role = %name, error = %e, "agent template not loaded");
                    all.by_name.remove(&name);
                    all.broken.insert(name, e.to_string());
                }
            }
        }
        Ok(all)
    }

    /// Checks every file and returns each error instead of stopping at the first.
    #[must_use]
    pub fn check_all(dir: &Path) -> Vec<(String, Result<Loaded>)> {
        let mut out: Vec<(String, Result<Loaded>)> = SHIPPED
            .iter()
            .map(|(n, text)| {
                (
                    (*n).to_string(),
                    load_text(n, text, Path::new(&format!("agents/{n}.toml"))),
                )
            })
            .collect();
        match workspace_files(dir) {
            Ok(files) => {
                for (name, path) in files {
                    let r = std::fs::read_to_string(&path)
                        .map_err(|e| Error::io(&path, e))
                        .and_then(|text| load_text(&name, &text, &path));
                    out.push((name, r));
                }
            }
            Err(e) => out.push((dir.display().to_string(), Err(e))),
        }
        out
    }

    /// Roles subscribed to a blackboard `topic` (a subscription ending in `*` is a prefix).
    #[must_use]
    pub fn subscribers(&self, topic: &str) -> Vec<&str> {
        self.by_name
            .iter()
            .filter(|(_, l)| {
                l.template
                    .subscriptions
                    .iter()
                    .any(|s| match s.strip_suffix('*') {
                        Some(prefix) => topic.starts_with(prefix),
                        None => s == topic,
                    })
            })
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub fn get(&self, role: &str) -> Result<&Loaded> {
        if let Some(e) = self.broken.get(role) {
            return Err(Error::invalid(
                format!("agent template {role}"),
                format!("{e} (run `keel agents check`)"),
            ));
        }
        self.by_name.get(role).ok_or_else(|| Error::NotFound {
            kind: "agent template".into(),
            id: format!(
                "{role} (known: {})",
                self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

fn workspace_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_string(), p)))
        // Workflows share the directory (`NAME.workflow.toml`); they are not roles.
        .filter(|(name, _)| !name.ends_with(".workflow"))
        .collect();
    files.sort();
    Ok(files)
}
