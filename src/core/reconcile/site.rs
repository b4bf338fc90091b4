//! Site directory against publication records.

use std::collections::BTreeMap;

use super::canonical_source::{CanonicalPublications, PublishedRecord};
use super::{Fix, Mismatch, MismatchKind};
use crate::core::connectors::SiteConnector;
use crate::core::connectors::atomic;
use crate::core::connectors::front_matter;
use crate::core::error::{Error, Result};

const TARGET: &str = "site";

pub fn reconcile_site(
    site: &SiteConnector,
    canonical: &dyn CanonicalPublications,
) -> Result<Vec<Mismatch>> {
    let root = site.root();
    let mut out = Vec::new();
    for tmp in atomic::stale_temps(root).map_err(|e| Error::io(root, e))? {
        out.push(Mismatch {
            target: TARGET.into(),
            kind: MismatchKind::StaleTemp,
            subject: tmp
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            detail: "left by an interrupted write; it was never the published page".into(),
            canonical_version: None,
            external_version: None,
            fixes: vec![Fix::RemoveTemp],
        });
    }
    let expected: BTreeMap<String, PublishedRecord> = canonical
        .publications()?
        .into_iter()
        .map(|p| (p.slug.clone(), p))
        .collect();
    let mut on_site = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let name = entry
            .map_err(|e| Error::io(root, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(slug) = name.strip_suffix(".md")
            && !name.starts_with('.')
        {
            on_site.push(slug.to_string());
        }
    }
    on_site.sort();
    for slug in &on_site {
        let record = expected.get(slug);
        if let Some(m) = check_page(site, slug, record) {
            out.push(m);
        }
    }
    for (slug, rec) in &expected {
        if !rec.archived && !on_site.contains(slug) {
            out.push(Mismatch {
                target: TARGET.into(),
                kind: MismatchKind::Missing,
                subject: slug.clone(),
                detail: format!(
                    "publication {} (version {}) is not on the site",
                    rec.id, rec.version
                ),
                canonical_version: Some(rec.version),
                external_version: None,
                fixes: vec![Fix::Republish, Fix::Archive],
            });
        }
    }
    Ok(out)
}

/// Compares one page on the site with its publication record (if any).
fn check_page(
    site: &SiteConnector,
    slug: &str,
    known: Option<&PublishedRecord>,
) -> Option<Mismatch> {
    let record = known.filter(|p| !p.archived);
    let mismatch = |kind, detail: String, ext: Option<i64>, fixes| Mismatch {
        target: TARGET.into(),
        kind,
        subject: slug.to_string(),
        detail,
        canonical_version: record.map(|r| r.version),
        external_version: ext,
        fixes,
    };
    match (record, site.read_page(slug)) {
        (_, Err(e)) => Some(mismatch(
            MismatchKind::Unreadable,
            e.to_string(),
            None,
            if record.is_some() {
                vec![Fix::Republish]
            } else {
                vec![Fix::Archive]
            },
        )),
        (None, Ok(Some((fm, _)))) => Some(mismatch(
            MismatchKind::Orphaned,
            match known {
                Some(p) if p.archived => format!(
                    "publication {} is archived but the page is still online",
                    p.id
                ),
                _ => "no publication object has this slug".into(),
            },
            Some(fm.version),
            vec![Fix::Archive, Fix::AdoptExternal],
        )),
        (Some(rec), Ok(Some((fm, body)))) => {
            let on_disk = front_matter::body_hash(&body);
            if fm.version != rec.version {
                return Some(mismatch(
                    MismatchKind::Drifted,
                    format!(
                        "the site has version {}, canonical is version {}",
                        fm.version, rec.version
                    ),
                    Some(fm.version),
                    vec![Fix::Republish, Fix::AdoptExternal],
                ));
            }
            if on_disk == front_matter::body_hash(&rec.body) {
                return None;
            }
            // Content no longer matching what keel wrote means someone edited the file.
            let by_hand = on_disk != fm.content_hash;
            Some(mismatch(
                MismatchKind::Drifted,
                if by_hand {
                    "the page was edited outside keel (its content no longer matches what keel wrote)".into()
                } else {
                    "the page content differs from the canonical version".into()
                },
                Some(fm.version),
                if by_hand {
                    vec![Fix::AdoptExternal, Fix::Republish]
                } else {
                    vec![Fix::Republish, Fix::AdoptExternal]
                },
            ))
        }
        (_, Ok(None)) => None,
    }
}
