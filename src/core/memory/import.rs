//! Import of files and directories: `.md`, `.markdown` and `.txt` become one item each
//! (chunked when long); each `.csv` row becomes an item (`column: value` lines). Binary,
//! non-UTF-8, empty and unsupported files are skipped and listed in the report with why.

use std::path::{Path, PathBuf};

use super::kb::{self, Added, NewItem};
use super::{Memory, Tier};
use crate::core::audit::Actor;
use crate::core::error::{Error, Result};
use crate::core::store::Store;

/// What an import did (protocol rows).
pub use crate::protocol::{ImportedItem, MemoryImportReport as ImportReport, Skipped};

/// What every imported item gets.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub kind: String,
    pub tier: Option<Tier>,
    pub tags: Vec<String>,
}

pub fn import(
    store: &mut Store,
    memory: &Memory,
    actor: &Actor,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let mut files = Vec::new();
    collect(path, &mut files)?;
    let mut report = ImportReport::default();
    for file in files {
        let shown = file.display().to_string();
        let texts = match read_texts(&file, memory.config.max_text_bytes) {
            Ok(t) => t,
            Err(reason) => {
                report.skipped.push(Skipped {
                    path: shown,
                    reason,
                });
                continue;
            }
        };
        for (source, text) in texts {
            let item = NewItem {
                text,
                kind: options.kind.clone(),
                tier: options.tier,
                source: source.clone(),
                tags: options.tags.clone(),
                ..NewItem::default()
            };
            match kb::add(store, memory, actor, &item) {
                Ok(Added::Stored { id, chunks, .. }) => {
                    report.added.push(ImportedItem { source, id, chunks });
                }
                Ok(Added::Duplicate(d)) => report.duplicates.push(ImportedItem {
                    source,
                    id: d.existing,
                    chunks: 0,
                }),
                Err(Error::Invalid { message, .. }) => report.skipped.push(Skipped {
                    path: source,
                    reason: message,
                }),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        collect(&entry, out)?;
    }
    Ok(())
}

/// The texts a file yields (source label, text), or why it is skipped.
fn read_texts(path: &Path, max_bytes: usize) -> std::result::Result<Vec<(String, String)>, String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if !matches!(ext.as_str(), "md" | "markdown" | "txt" | "csv") {
        return Err(format!(
            "unsupported file type {ext:?} (expected .md, .txt or .csv)"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("empty".into());
    }
    if bytes.iter().take(8192).any(|b| *b == 0) {
        return Err("binary (contains NUL bytes)".into());
    }
    if bytes.len() > max_bytes {
        return Err(format!(
            "{} bytes is over the {max_bytes}-byte limit",
            bytes.len()
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "not valid UTF-8 (first bad byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    let shown = path.display().to_string();
    if ext != "csv" {
        return Ok(vec![(shown, text)]);
    }
    let rows = parse_csv(&text);
    let Some((header, body)) = rows.split_first() else {
        return Err("empty".into());
    };
    let items: Vec<(String, String)> = body
        .iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, r)| {
            let lines: Vec<String> = header
                .iter()
                .zip(r)
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(h, v)| format!("{}: {}", h.trim(), v.trim()))
                .collect();
            (format!("{shown}#row{}", i + 2), lines.join("\n"))
        })
        .collect();
    if items.is_empty() {
        return Err("a CSV header without rows".into());
    }
    Ok(items)
}

/// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and newlines.
#[must_use]
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (_, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_and_newlines() {
        let rows = parse_csv("a,b\n\"x, y\",\"say \"\"hi\"\"\nthere\"\r\n3,4");
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[1],
            vec!["x, y".to_string(), "say \"hi\"\nthere".to_string()]
        );
        assert_eq!(rows[2], vec!["3".to_string(), "4".to_string()]);
    }
}
