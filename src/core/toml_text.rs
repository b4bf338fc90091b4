//! TOML text with errors that name the file, line and column: the one parser every keel
//! file (configuration, policy, templates, themes, key maps) goes through. Kept apart from
//! `config.rs` so a client (the console) can parse its own files without the workspace
//! configuration.

use std::path::Path;

use crate::core::error::{Error, Result};

/// Parses TOML `text` from `path` into `T`, turning the error's span into line:column.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| toml_error(&e, text, path))
}

/// Converts a toml error into [`Error::Config`] with 1-based line and column.
#[must_use]
pub fn toml_error(err: &toml::de::Error, text: &str, path: &Path) -> Error {
    let (line, column) = err.span().map_or((1, 1), |span| line_col(text, span.start));
    Error::Config {
        file: path.to_path_buf(),
        line,
        column,
        message: err.message().trim().to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
#[must_use]
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
