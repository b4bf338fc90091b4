//! TOML front matter (`+++` fences, as Hugo and Zola read it) for published Markdown pages.
//! It records who wrote the page: slug, version, content hash and the idempotency key.

use serde::{Deserialize, Serialize};

const FENCE: &str = "+++";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontMatter {
    pub title: String,
    pub slug: String,
    pub version: i64,
    /// sha256 of the Markdown body, so drift is detectable.
    pub content_hash: String,
    /// The effects ledger's key for the write that produced this file.
    pub idempotency_key: String,
    /// Other fields the publication carries (tags, date…), passed through.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub extra: toml::Table,
}

/// Renders a page: front matter, a blank line, the body.
pub fn render(fm: &FrontMatter, body: &str) -> Result<String, String> {
    let head = toml::to_string(fm).map_err(|e| format!("cannot write front matter: {e}"))?;
    let mut out = format!("{FENCE}\n{head}{FENCE}\n\n{body}");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Splits and parses a page. An error says what is wrong (missing fence, bad TOML).
pub fn parse(text: &str) -> Result<(FrontMatter, String), String> {
    let rest = text
        .strip_prefix("+++\n")
        .ok_or("the file does not start with +++ front matter")?;
    let end = rest
        .find("\n+++\n")
        .or_else(|| rest.ends_with("\n+++").then(|| rest.len() - 4))
        .ok_or("the front matter is not closed by +++ (the file may be truncated)")?;
    let fm: FrontMatter = toml::from_str(&rest[..=end])
        .map_err(|e| format!("front matter: {}", e.message().trim()))?;
    let body = rest[end + 1..].strip_prefix("+++").unwrap_or("");
    let body = body.strip_prefix('\n').unwrap_or(body);
    let body = body.strip_prefix('\n').unwrap_or(body);
    Ok((fm, body.to_string()))
}

/// sha256 of a page body, ignoring a trailing newline difference.
#[must_use]
pub fn body_hash(body: &str) -> String {
    crate::core::canonical::sha256_hex(body.trim_end_matches('\n').as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let fm = FrontMatter {
            title: "Hello \"world\"".into(),
            slug: "hello".into(),
            version: 2,
            content_hash: body_hash("# Hi\n\ntext"),
            idempotency_key: "k1".into(),
            extra: toml::Table::new(),
        };
        let page = render(&fm, "# Hi\n\ntext").unwrap();
        let (back, body) = parse(&page).unwrap();
        assert_eq!(back, fm);
        assert_eq!(body_hash(&body), fm.content_hash);
    }

    #[test]
    fn truncated_page_is_an_error() {
        let err = parse("+++\ntitle = \"x\"\nslug = \"x\"\n").unwrap_err();
        assert!(err.contains("not closed"), "{err}");
        assert!(parse("no front matter").is_err());
    }
}
