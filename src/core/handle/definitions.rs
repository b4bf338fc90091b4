//! The workspace's parsed definitions — agent templates and the kinds table built from them
//! and the config — cached by file modification time, like the policy cache in
//! `core::actions::Gates`: the core thread serves many ops and an approve press should not
//! re-parse every template and compile every schema.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::core::agents::service::{AGENTS_DIR, kinds_with_outputs};
use crate::core::agents::template::Templates;
use crate::core::config::Config;
use crate::core::error::Result;
use crate::core::objects::Kinds;
use crate::core::workspace::{CONFIG_FILE, Workspace};

/// The modification time of every file the definitions come from.
type Stamp = Vec<(PathBuf, Option<SystemTime>)>;

struct Parsed {
    stamp: Stamp,
    templates: Arc<Templates>,
    kinds: Arc<Kinds>,
}

/// config.toml's modification time (`None` when the file system does not give one).
#[derive(Clone, Copy)]
struct ConfigStamp(Option<SystemTime>);

#[derive(Default)]
pub struct Definitions {
    parsed: Option<Parsed>,
    /// config.toml as re-read after it changed on disk; until then the workspace's loaded
    /// config is used (a caller may have adjusted it in memory).
    config: Option<(Option<SystemTime>, Config)>,
    /// The modification time of config.toml when the definitions were first built.
    first_config_at: Option<ConfigStamp>,
}

impl Definitions {
    pub fn kinds(&mut self, ws: &Workspace) -> Result<Arc<Kinds>> {
        Ok(Arc::clone(&self.current(ws)?.kinds))
    }

    pub fn templates(&mut self, ws: &Workspace) -> Result<Arc<Templates>> {
        Ok(Arc::clone(&self.current(ws)?.templates))
    }

    /// The parsed definitions, re-read only when one of their files changed since.
    fn current(&mut self, ws: &Workspace) -> Result<&Parsed> {
        let stamp = stamp(&ws.root);
        let fresh = self.parsed.as_ref().is_some_and(|p| p.stamp == stamp);
        if !fresh {
            let config_path = ws.root.join(CONFIG_FILE);
            let config_at = modified(&config_path);
            let ConfigStamp(first) = *self.first_config_at.get_or_insert(ConfigStamp(config_at));
            let reread = self.config.as_ref().is_some_and(|(at, _)| *at == config_at);
            if first == config_at {
                self.config = None;
            } else if !reread {
                self.config = Some((config_at, Config::load(&config_path)?));
            }
            let config = self.config.as_ref().map_or(&ws.config, |(_, c)| c);
            let templates = Templates::load(&ws.root.join(AGENTS_DIR))?;
            let kinds = kinds_with_outputs(config, &templates)?;
            self.parsed = Some(Parsed {
                stamp,
                templates: Arc::new(templates),
                kinds: Arc::new(kinds),
            });
        }
        // Why not `expect`: the branch above filled it; an empty cache would be a bug here.
        self.parsed
            .as_ref()
            .ok_or_else(|| crate::core::error::Error::Other("definitions not loaded".into()))
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// config.toml, the agents directory (a file added or removed) and each file in it.
fn stamp(root: &Path) -> Stamp {
    let dir = root.join(AGENTS_DIR);
    let mut files: Stamp = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .map(|e| e.path())
                .map(|p| {
                    let at = modified(&p);
                    (p, at)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let config = root.join(CONFIG_FILE);
    let config_at = modified(&config);
    let dir_at = modified(&dir);
    files.push((config, config_at));
    files.push((dir, dir_at));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_cached_until_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::init(&dir.path().join("ws")).unwrap();
        let mut defs = Definitions::default();
        let first = defs.templates(&ws).unwrap();
        assert!(Arc::ptr_eq(&first, &defs.templates(&ws).unwrap()), "cached");
        let kinds = defs.kinds(&ws).unwrap();
        assert!(Arc::ptr_eq(&kinds, &defs.kinds(&ws).unwrap()), "cached");
        // The operator overrides a shipped role: the file is picked up, kinds rebuilt.
        let agents = ws.root.join(AGENTS_DIR);
        std::fs::create_dir_all(&agents).unwrap();
        let path = agents.join("writer.toml");
        std::fs::write(&path, include_str!("../../../agents/writer.toml")).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        let reloaded = defs.templates(&ws).unwrap();
        assert!(!Arc::ptr_eq(&first, &reloaded), "reloaded");
        assert!(reloaded.by_name["writer"].origin.contains("writer.toml"));
        assert!(!Arc::ptr_eq(&kinds, &defs.kinds(&ws).unwrap()), "rebuilt");
    }
}
