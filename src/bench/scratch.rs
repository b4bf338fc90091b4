//! A private scratch directory for a benchmark, removed on drop (`tempfile` is only a
//! dev-dependency).

use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(what: &str) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("keel-bench-{what}-{}", crate::core::ids::new_id()));
        crate::core::workspace::create_private_dir(&dir)?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
