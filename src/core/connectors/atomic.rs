//! Atomic file replacement: write a temp file in the same directory, fsync it, rename it over
//! the destination, fsync the directory. A crash leaves either the old file or the new one,
//! plus at worst a stale temp file, which [`clean_stale_temps`] removes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Suffix of temp files; nothing else in a target directory ends with it.
pub const TEMP_SUFFIX: &str = ".keel-tmp";

/// The temp file used while writing `name` in `dir`.
#[must_use]
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{TEMP_SUFFIX}"))
}

/// Replaces `dir/name` with `bytes` atomically, private to the operator (0600) like every
/// other workspace file.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    write_with_mode(dir, name, bytes, 0o600)
}

/// [`write`] with the file's permission `mode` (published pages are served: 0644).
pub fn write_with_mode(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = temp_path(dir, name);
    // Remove a leftover (or a planted symlink) first; create_new never follows a symlink.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        let mut f = opts.open(&tmp)?;
        // The umask may have narrowed the mode at creation: set it as asked.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Removes `dir/name` and makes the removal durable.
pub fn remove(dir: &Path, name: &str) -> std::io::Result<()> {
    std::fs::remove_file(dir.join(name))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Temp files left by an interrupted write in `dir` (not recursive).
pub fn stale_temps(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(TEMP_SUFFIX) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the temp files left by interrupted writes; returns what it removed.
pub fn clean_stale_temps(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let temps = stale_temps(dir)?;
    for t in &temps {
        std::fs::remove_file(t)?;
    }
    Ok(temps)
}
