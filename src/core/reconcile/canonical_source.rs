//! Where reconciliation reads what *should* be published.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::error::Result;

/// One publication as canonical state has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedRecord {
    /// Object id of the publication.
    pub id: String,
    pub slug: String,
    pub version: i64,
    pub title: String,
    pub body: String,
    pub archived: bool,
}

pub trait CanonicalPublications {
    fn publications(&self) -> Result<Vec<PublishedRecord>>;
}

/// Publication objects in the store: kind `publication`, current version, body fields
/// `slug` (default: the object id), `title` and `body` (Markdown).
#[derive(Debug)]
pub struct PublicationObjects<'a>(pub &'a Connection);

pub const PUBLICATION_KIND: &str = "publication";

impl CanonicalPublications for PublicationObjects<'_> {
    fn publications(&self) -> Result<Vec<PublishedRecord>> {
        let mut stmt = self.0.prepare(
            "SELECT o.id, o.version, o.archived, v.body FROM objects o
             JOIN object_versions v ON v.kind = o.kind AND v.id = o.id AND v.version = o.version
             WHERE o.kind = ?1 ORDER BY o.id",
        )?;
        let rows = stmt
            .query_map([PUBLICATION_KIND], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .map(|(id, version, archived, body)| {
                let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
                PublishedRecord {
                    slug: text("slug").unwrap_or_else(|| id.clone()),
                    title: text("title").unwrap_or_default(),
                    body: text("body").unwrap_or_default(),
                    id,
                    version,
                    archived,
                }
            })
            .collect())
    }
}
