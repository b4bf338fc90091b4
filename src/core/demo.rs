//! The sample business `keel demo` opens on: a few objects of every kind, some with history,
//! written once (a `meta` flag remembers it) and audited like any other write.

use rusqlite::{OptionalExtension, Transaction};
use serde_json::{Value, json};

use crate::core::audit::Actor;
use crate::core::clock::Millis;
use crate::core::error::Result;
use crate::core::objects::{self, Kinds, Stamp};
use crate::core::store::Store;

const SEEDED: &str = "demo.objects_seeded";

/// Writes the sample objects into a fresh workspace (one with no audit history) unless it
/// already has them. Returns whether it wrote anything.
pub fn seed(store: &mut Store, kinds: &Kinds, now_ms: Millis) -> Result<bool> {
    store.write(|tx| {
        let done: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [SEEDED], |r| {
                r.get(0)
            })
            .optional()?;
        // Only a fresh workspace gets samples: never mix them into a real business.
        let history: i64 = tx.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
        if done.is_some() || history > 0 {
            return Ok(false);
        }
        write_samples(tx, kinds, now_ms)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            rusqlite::params![SEEDED, now_ms.to_string()],
        )?;
        Ok(true)
    })
}

fn write_samples(tx: &Transaction<'_>, kinds: &Kinds, now_ms: Millis) -> Result<()> {
    const DAY: Millis = 86_400_000;
    let demo = Stamp::new(Actor::system("demo"), now_ms - 30 * DAY);
    let put =
        |kind: &str, id: &str, body: Value| objects::put(tx, kinds, &demo, kind, id, None, &body);
    for (kind, id, body) in samples(now_ms) {
        put(kind, id, body)?;
    }
    // A draft with history: the operator tightened the wording a week later.
    let edit = Stamp::new(Actor::Operator, now_ms - 23 * DAY);
    objects::put(
        tx,
        kinds,
        &edit,
        "draft",
        "welcome-email",
        Some(1),
        &json!({
            "title": "Welcome to the studio",
            "channel": "email",
            "status": "review",
            "body": "Hi {first_name},\n\nThanks for joining. Every month I take one real landing page apart and rebuild it.\nReply and tell me which page you want me to look at next.\n\nAnna",
        }),
    )?;
    objects::archive(tx, &edit, "idea", "podcast", 1)?;
    Ok(())
}

fn samples(now_ms: Millis) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "customer",
            "acme-studio",
            json!({"name": "Acme Studio", "email": "hello@acme.example", "company": "Acme Studio", "status": "active", "tags": ["design", "retainer"]}),
        ),
        (
            "customer",
            "bea-lindqvist",
            json!({"name": "Bea Lindqvist", "email": "bea@example.org", "status": "lead", "notes": "Met at the Oslo meetup; wants a workshop in March."}),
        ),
        (
            "offer",
            "site-audit",
            json!({"title": "Website audit", "description": "A two-hour review of speed, copy and conversion, with a written report.", "price": {"amount": 450, "currency": "EUR"}, "status": "active"}),
        ),
        (
            "offer",
            "copy-workshop",
            json!({"title": "Copywriting workshop (half day)", "price": {"amount": 1200, "currency": "EUR"}, "status": "draft"}),
        ),
        (
            "idea",
            "teardown-newsletter",
            json!({"title": "Monthly teardown newsletter", "text": "Pick one public landing page a month and rewrite it in the open.", "status": "exploring", "score": 7}),
        ),
        (
            "idea",
            "podcast",
            json!({"title": "Podcast", "text": "Too much editing time for now.", "status": "parked"}),
        ),
        (
            "draft",
            "welcome-email",
            json!({"title": "Welcome!", "channel": "email", "status": "writing", "body": "Hi {first_name},\n\nThanks for signing up to my newsletter. Every month I will be taking apart one landing page and showing how I would rebuild it.\n\nAnna"}),
        ),
        (
            "publication",
            "pricing-page-post",
            json!({"title": "Why your pricing page loses buyers", "url": "https://example.com/blog/pricing-page", "channel": "blog", "published_ms": now_ms - 12 * 86_400_000_i64}),
        ),
        (
            "contract",
            "acme-retainer-2026",
            json!({"title": "Acme retainer 2026", "party": "Acme Studio", "amount": 900, "currency": "EUR", "status": "signed", "starts": "2026-01-01", "ends": "2026-12-31"}),
        ),
        (
            "preference",
            "tone",
            json!({"key": "tone", "value": "warm, direct, no jargon", "why": "Customers say they like the plain talk."}),
        ),
        (
            "note",
            "pricing-call",
            json!({"title": "Call with Bea about pricing", "text": "She compares us with two agencies.\nHalf-day workshop at 1,200 EUR felt fair to her.\nFollow up in two weeks."}),
        ),
        (
            "metric",
            "newsletter-subscribers",
            json!({"name": "newsletter subscribers", "value": 412, "unit": "people", "at_ms": now_ms - 86_400_000_i64, "source": "import"}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::Durability;

    #[test]
    fn seeds_once_with_history_and_a_clean_audit_chain() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("keel.db"), Durability::Normal).unwrap();
        let kinds = Kinds::builtin().unwrap();
        assert!(seed(&mut store, &kinds, 1_800_000_000_000).unwrap());
        let audited = crate::core::audit::count(store.conn()).unwrap();
        assert!(!seed(&mut store, &kinds, 1_800_000_000_000).unwrap());
        let all = objects::list(
            store.conn(),
            &objects::ListFilter {
                include_archived: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(all.total, 12);
        let kinds_seen: std::collections::BTreeSet<_> =
            all.items.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds_seen.len(), 9, "every built-in kind has a sample");
        assert_eq!(
            objects::history(store.conn(), "draft", "welcome-email")
                .unwrap()
                .len(),
            2
        );
        assert!(
            objects::get(store.conn(), "idea", "podcast")
                .unwrap()
                .archived
        );
        assert!(
            crate::core::audit::verify(store.conn())
                .unwrap()
                .first_broken
                .is_none()
        );
        assert_eq!(crate::core::audit::count(store.conn()).unwrap(), audited);
    }

    #[test]
    fn a_workspace_with_history_gets_no_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("keel.db"), Durability::Normal).unwrap();
        let kinds = Kinds::builtin().unwrap();
        let stamp = Stamp::new(Actor::Operator, 1);
        let body = json!({"text": "real"});
        store
            .write(|tx| objects::put(tx, &kinds, &stamp, "note", "mine", None, &body))
            .unwrap();
        assert!(!seed(&mut store, &kinds, 2).unwrap());
        assert_eq!(crate::core::audit::count(store.conn()).unwrap(), 1);
    }
}
