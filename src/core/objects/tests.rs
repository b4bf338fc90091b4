//! Unit tests of versioning, conflicts, revert, archive and diff on a real `SQLite` store.

use serde_json::json;

use super::*;
use crate::core::audit::{self, Actor};
use crate::core::store::{Durability, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    kinds: Kinds,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("keel.db"), Durability::Normal).unwrap();
    Fixture {
        _dir: dir,
        store,
        kinds: Kinds::builtin().unwrap(),
    }
}

fn stamp(ts: i64) -> Stamp {
    Stamp::new(Actor::Operator, ts)
}

impl Fixture {
    fn put(&mut self, id: &str, based_on: Option<i64>, body: &Value) -> Result<Written> {
        let kinds = self.kinds.clone();
        self.store
            .write(|tx| put(tx, &kinds, &stamp(1_000), "draft", id, based_on, body))
    }
}

#[test]
fn every_write_adds_a_version_with_parent_author_and_hash() {
    let mut f = fixture();
    let v1 = f
        .put("w", None, &json!({"title": "Hello", "body": "one"}))
        .unwrap();
    assert_eq!((v1.version, v1.parent, v1.changed), (1, None, true));
    let kinds = f.kinds.clone();
    let v2 = f
        .store
        .write(|tx| {
            put(
                tx,
                &kinds,
                &Stamp::new(Actor::agent("run-7"), 2_000),
                "draft",
                "w",
                Some(1),
                &json!({"title": "Hello!", "body": "two"}),
            )
        })
        .unwrap();
    assert_eq!((v2.version, v2.parent), (2, Some(1)));
    let h = history(f.store.conn(), "draft", "w").unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].author, "agent:run-7");
    assert_eq!(h[1].parent, Some(1));
    assert_eq!(h[1].created_ms, 2_000);
    assert_eq!(h[1].hash, crate::core::canonical::hash_value(&h[1].body));
    let current = get(f.store.conn(), "draft", "w").unwrap();
    assert_eq!((current.version, current.title.as_str()), (2, "Hello!"));
    assert_eq!(current.created_ms, 1_000);
    assert_eq!(current.updated_ms, 2_000);
}

#[test]
fn stale_or_missing_based_on_is_a_conflict_and_nothing_is_written() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "a"})).unwrap();
    f.put("w", Some(1), &json!({"title": "b"})).unwrap();
    let stale = f.put("w", Some(1), &json!({"title": "c"})).unwrap_err();
    assert!(
        matches!(
            stale,
            Error::Conflict {
                based_on: 1,
                current: 2,
                ..
            }
        ),
        "{stale}"
    );
    let recreate = f.put("w", None, &json!({"title": "d"})).unwrap_err();
    assert!(
        matches!(
            recreate,
            Error::Conflict {
                based_on: 0,
                current: 2,
                ..
            }
        ),
        "{recreate}"
    );
    let missing = f.put("nope", Some(3), &json!({"title": "e"})).unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");
    assert_eq!(history(f.store.conn(), "draft", "w").unwrap().len(), 2);
    assert_eq!(audit::count(f.store.conn()).unwrap(), 2);
}

#[test]
fn identical_body_changes_nothing() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "a", "body": "x"}))
        .unwrap();
    // Same content, different key order: same canonical hash.
    let again = f
        .put("w", Some(1), &json!({"body": "x", "title": "a"}))
        .unwrap();
    assert!(!again.changed);
    assert_eq!(again.version, 1);
    assert_eq!(audit::count(f.store.conn()).unwrap(), 1);
}

#[test]
fn revert_adds_a_version_equal_to_the_old_one() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "first"})).unwrap();
    f.put("w", Some(1), &json!({"title": "second"})).unwrap();
    let kinds = f.kinds.clone();
    let r = f
        .store
        .write(|tx| revert(tx, &kinds, &stamp(3_000), "draft", "w", 1, 2))
        .unwrap();
    assert_eq!((r.version, r.parent), (3, Some(2)));
    let h = history(f.store.conn(), "draft", "w").unwrap();
    assert_eq!(h[2].body, h[0].body);
    assert_eq!(h[2].hash, h[0].hash);
    assert_eq!(h[2].note, "revert to 1");
    assert_eq!(get(f.store.conn(), "draft", "w").unwrap().title, "first");
    let stale = f
        .store
        .write(|tx| revert(tx, &kinds, &stamp(3_000), "draft", "w", 2, 2))
        .unwrap_err();
    assert!(matches!(stale, Error::Conflict { .. }), "{stale}");
    let missing = f
        .store
        .write(|tx| revert(tx, &kinds, &stamp(3_000), "draft", "w", 9, 3))
        .unwrap_err();
    assert!(missing.to_string().contains("version 9"), "{missing}");
}

#[test]
fn archive_hides_refuses_edits_and_deletes_nothing() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "a"})).unwrap();
    f.put("other", None, &json!({"title": "b"})).unwrap();
    let a = f
        .store
        .write(|tx| archive(tx, &stamp(5), "draft", "w", 1))
        .unwrap();
    assert!(a.archived && a.changed);
    assert_eq!(a.version, 2);
    let visible = list(f.store.conn(), &ListFilter::default()).unwrap();
    assert_eq!(visible.total, 1);
    assert_eq!(visible.items[0].id, "other");
    let all = list(
        f.store.conn(),
        &ListFilter {
            include_archived: true,
            ..ListFilter::default()
        },
    )
    .unwrap();
    assert_eq!(all.total, 2);
    let refused = f.put("w", Some(2), &json!({"title": "c"})).unwrap_err();
    assert!(refused.to_string().contains("archived"), "{refused}");
    let back = f
        .store
        .write(|tx| unarchive(tx, &stamp(6), "draft", "w", 2))
        .unwrap();
    assert_eq!((back.version, back.archived), (3, false));
    let h = history(f.store.conn(), "draft", "w").unwrap();
    let notes: Vec<_> = h.iter().map(|v| v.note.as_str()).collect();
    assert_eq!(notes, ["", "archive", "unarchive"]);
    let actions: Vec<_> = audit::query(f.store.conn(), &audit::Filter::default(), 10, false)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "object.put",
            "object.put",
            "object.archive",
            "object.unarchive"
        ]
    );
}

#[test]
fn list_filters_by_kind_and_text_and_pages() {
    let mut f = fixture();
    let kinds = f.kinds.clone();
    for i in 0..5 {
        f.store
            .write(|tx| {
                put(
                    tx,
                    &kinds,
                    &stamp(i),
                    "note",
                    &format!("n{i}"),
                    None,
                    &json!({"text": format!("note number {i}\nmore")}),
                )
            })
            .unwrap();
    }
    f.put(
        "d",
        None,
        &json!({"title": "Pricing page", "body": "cheap"}),
    )
    .unwrap();
    let notes = list(
        f.store.conn(),
        &ListFilter {
            kind: Some("note".into()),
            offset: 1,
            limit: 2,
            ..ListFilter::default()
        },
    )
    .unwrap();
    assert_eq!(notes.total, 5);
    let ids: Vec<_> = notes.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["n3", "n2"]);
    assert_eq!(notes.items[0].title, "note number 3");
    let found = list(
        f.store.conn(),
        &ListFilter {
            text: Some("CHEAP".into()),
            ..ListFilter::default()
        },
    )
    .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].title, "Pricing page");
}

#[test]
fn diff_compares_text_fields_line_by_line() {
    let a = json!({"title": "T", "body": "line one\nline two\nline three", "tags": ["a"]});
    let b = json!({"title": "T", "body": "line one\nline 2\nline three", "tags": ["a", "b"]});
    let d = diff_bodies(&a, &b, "draft/x@1", "draft/x@2");
    assert!(d.starts_with("--- draft/x@1\n+++ draft/x@2\n"), "{d}");
    assert!(d.contains("\n-  line two\n+  line 2\n"), "{d}");
    assert!(d.contains("+    \"b\""), "{d}");
    assert!(!d.contains("-  line one"), "{d}");
    assert_eq!(diff_bodies(&a, &a, "x", "y"), "");
}

#[test]
fn diff_between_stored_versions() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "a", "body": "x\ny"}))
        .unwrap();
    f.put("w", Some(1), &json!({"title": "a", "body": "x\nz"}))
        .unwrap();
    let d = diff(f.store.conn(), "draft", "w", 1, 2).unwrap();
    assert!(d.contains("-  y\n+  z"), "{d}");
    assert!(diff(f.store.conn(), "draft", "w", 1, 7).is_err());
}

#[test]
fn schema_and_id_errors_write_nothing() {
    let mut f = fixture();
    let bad = f.put("w", None, &json!({"title": 5})).unwrap_err();
    assert!(
        matches!(&bad, Error::Schema { field, .. } if field == "title"),
        "{bad}"
    );
    assert!(f.put("a/b", None, &json!({"title": "x"})).is_err());
    assert!(f.put("", None, &json!({"title": "x"})).is_err());
    assert_eq!(audit::count(f.store.conn()).unwrap(), 0);
}

#[test]
fn audit_entry_commits_with_the_version() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "a"})).unwrap();
    let e = &audit::query(f.store.conn(), &audit::Filter::default(), 1, true).unwrap()[0];
    assert_eq!(
        (e.action.as_str(), e.subject.as_str(), e.actor.as_str()),
        ("object.put", "draft/w", "operator")
    );
    assert_eq!(e.payload["version"], 1);
    assert_eq!(e.payload["parent"], Value::Null);
    assert_eq!(
        e.payload["hash"],
        get(f.store.conn(), "draft", "w").unwrap().hash
    );
    // A failing closure after the put rolls both back.
    let kinds = f.kinds.clone();
    let failed: Result<()> = f.store.write(|tx| {
        put(
            tx,
            &kinds,
            &stamp(9),
            "draft",
            "z",
            None,
            &json!({"title": "z"}),
        )?;
        Err(Error::Other("later step failed".into()))
    });
    assert!(failed.is_err());
    assert!(find(f.store.conn(), "draft", "z").unwrap().is_none());
    assert_eq!(audit::count(f.store.conn()).unwrap(), 1);
}

#[test]
fn a_full_database_gives_a_clear_error_and_keeps_what_was_committed() {
    let mut f = fixture();
    f.put("kept", None, &json!({"title": "kept"})).unwrap();
    // SQLite reports SQLITE_FULL exactly as for a full disk once it may not grow the file.
    let pages: i64 = f
        .store
        .conn()
        .pragma_query_value(None, "page_count", |r| r.get(0))
        .unwrap();
    f.store
        .conn()
        .pragma_update(None, "max_page_count", pages)
        .unwrap();
    let big = "x".repeat(64 * 1024);
    let err = f
        .put("big", None, &json!({"title": "big", "body": big}))
        .unwrap_err();
    assert!(matches!(err, Error::DiskFull { .. }), "{err:?}");
    assert!(err.to_string().contains("disk is full"), "{err}");
    assert!(find(f.store.conn(), "draft", "big").unwrap().is_none());
    assert_eq!(get(f.store.conn(), "draft", "kept").unwrap().version, 1);
    assert!(
        audit::verify(f.store.conn())
            .unwrap()
            .first_broken
            .is_none()
    );
}

#[test]
fn titles_fall_back_sensibly() {
    assert_eq!(title_of(&json!({"name": "Ann"})), "Ann");
    assert_eq!(title_of(&json!({"key": "tone", "value": 1})), "tone");
    assert_eq!(
        title_of(&json!({"text": "\nfirst line\nsecond"})),
        "first line"
    );
    assert_eq!(title_of(&json!({"n": 1})), "");
    assert!(title_of(&json!({"title": "x".repeat(500)})).chars().count() <= 120);
}

#[test]
fn the_core_handle_writes_queries_and_notifies() {
    use crate::core::clock::ManualClock;
    use crate::core::handle::CoreHandle;
    use crate::protocol::{Event, ObjectRow, ObjectVersionRow, Op, Page, Query};

    let dir = tempfile::tempdir().unwrap();
    let ws = crate::core::workspace::Workspace::init(&dir.path().join("ws")).unwrap();
    let core = CoreHandle::start_with_clock(ws, std::sync::Arc::new(ManualClock::at(42))).unwrap();
    let mut events = core.subscribe();
    let put = |based_on, title: &str| Op::PutObject {
        kind: "idea".into(),
        id: "i1".into(),
        based_on,
        body: json!({"title": title}),
    };
    let w: Written = core
        .request_blocking(put(None, "one"))
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(w.version, 1);
    assert_eq!(
        events.try_recv().unwrap(),
        Event::Changed {
            subject: "idea/i1".into(),
            action: "object.put".into()
        }
    );
    core.request_blocking(put(Some(1), "two")).unwrap();
    let conflict = core.request_blocking(put(Some(1), "three")).unwrap_err();
    assert!(
        matches!(conflict, Error::Conflict { current: 2, .. }),
        "{conflict}"
    );
    core.request_blocking(Op::RevertObject {
        kind: "idea".into(),
        id: "i1".into(),
        to_version: 1,
        based_on: 2,
    })
    .unwrap();
    let query = |q| core.request_blocking(Op::Query { query: q }).unwrap();
    let page: Page<ObjectRow> = query(Query::Objects {
        kind: Some("idea".into()),
        text: None,
        include_archived: false,
        offset: 0,
        limit: 10,
    })
    .try_into()
    .unwrap();
    assert_eq!(
        (
            page.total,
            page.items[0].version,
            page.items[0].title.as_str()
        ),
        (1, 3, "one")
    );
    assert_eq!(page.items[0].updated_ms, 42);
    let history: Vec<ObjectVersionRow> = query(Query::ObjectHistory {
        kind: "idea".into(),
        id: "i1".into(),
    })
    .try_into()
    .unwrap();
    assert_eq!(history.len(), 3);
    let diff: String = query(Query::ObjectDiff {
        kind: "idea".into(),
        id: "i1".into(),
        from: 1,
        to: 2,
    })
    .try_into()
    .unwrap();
    assert!(diff.contains("+title: \"two\""), "{diff}");
    core.request_blocking(Op::ArchiveObject {
        kind: "idea".into(),
        id: "i1".into(),
        based_on: 3,
    })
    .unwrap();
    core.shutdown();
}

#[test]
fn verify_finds_a_version_edited_behind_the_triggers_back() {
    let mut f = fixture();
    f.put("w", None, &json!({"title": "a"})).unwrap();
    f.put("w", Some(1), &json!({"title": "b"})).unwrap();
    f.put("x", None, &json!({"title": "c"})).unwrap();
    let clean = verify(f.store.conn(), 10).unwrap();
    assert_eq!((clean.versions, clean.mismatches.len()), (3, 0));
    f.store
        .conn()
        .execute_batch(
            "DROP TRIGGER object_versions_no_update;
             UPDATE object_versions SET body = '{\"title\":\"forged\"}' WHERE id = 'w' AND version = 2;",
        )
        .unwrap();
    let found = verify(f.store.conn(), 10).unwrap();
    assert_eq!(found.mismatches.len(), 1);
    assert_eq!(
        (found.mismatches[0].id.as_str(), found.mismatches[0].version),
        ("w", 2)
    );
    assert!(found.mismatches[0].reason.contains("stored hash"));
    // Forging the stored hash too is caught by the audit entry.
    let forged = crate::core::canonical::hash_value(&json!({"title": "forged"}));
    f.store
        .conn()
        .execute(
            "UPDATE object_versions SET hash = ?1 WHERE id = 'w' AND version = 2",
            [forged],
        )
        .unwrap();
    let found = verify(f.store.conn(), 10).unwrap();
    assert!(
        found.mismatches[0].reason.contains("audit entry"),
        "{found:?}"
    );
}
