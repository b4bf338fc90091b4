//! The core must not depend on the terminal: nothing under src/core/ may mention ratatui or
//! crossterm (the console is one client of the core handle, the CLI another).

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_under_core_uses_the_terminal_crates() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut files = Vec::new();
    rust_files(&core, &mut files);
    assert!(
        files.len() > 10,
        "found only {} files under {}",
        files.len(),
        core.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains("ratatui") || text.contains("crossterm")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "terminal crates used in the core: {offenders:?}"
    );
}

fn files_under(dir: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    files
}

fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with("tests.rs") || name == "test_fixtures.rs"
}

/// The protocol stands alone: a new client (an MCP server) needs it and nothing else.
#[test]
fn the_protocol_imports_nothing_from_the_core() {
    let files = files_under("src/protocol");
    assert!(files.len() >= 4, "found only {files:?}");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.contains("crate::core")
                || text.contains("keel::core")
                || text.contains("super::core")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "the protocol uses core types: {offenders:?}"
    );
}

/// Commands whose writes do not go through the handle yet. Empty since `keel memory` and
/// `keel analytics` moved to the handle; keep it so.
const NOT_YET_THROUGH_THE_HANDLE: &[&str] = &[];

/// Clients write through the core handle: outside `src/core` (and `src/bench`, which
/// measures the store itself) no code starts a write transaction or holds a store mutably.
#[test]
fn nothing_outside_the_core_writes_to_a_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src/cli", "src/tui", "src/protocol"] {
        files.extend(files_under(dir));
    }
    for file in ["src/main.rs", "src/lib.rs", "src/logging.rs"] {
        files.push(root.join(file));
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let writes = [
        ".write(|",
        "&mut store",
        "mut store",
        "&mut Store",
        "Store::open(",
    ];
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !is_test_file(f))
        .filter(|f| {
            let rel = f.strip_prefix(root).unwrap().display().to_string();
            !NOT_YET_THROUGH_THE_HANDLE
                .iter()
                .any(|p| rel.starts_with(p))
        })
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            writes.iter().any(|w| text.contains(w))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "writes outside the core handle: {offenders:?}"
    );
}
