//! The knowledge base's tests: validation, tags, duplicates, deferred embedding.

use super::add::figures;
use super::*;
use crate::core::audit::Actor;
use crate::core::memory::Memory;
use crate::core::store::Store;

/// The model's stand-in: fails like a missing model until `ready` is set.
struct LateModel {
    ready: std::sync::atomic::AtomicBool,
}

impl crate::core::memory::embed::Embed for LateModel {
    fn version(&self) -> crate::core::memory::embed::EmbeddingVersion {
        crate::core::memory::embed::EmbeddingVersion {
            name: "late".into(),
            sha256: "0123456789abcdef".into(),
            dims: 4,
        }
    }
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if !self.ready.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Other(
                "the embedding model is missing (keel models fetch)".into(),
            ));
        }
        Ok(texts
            .iter()
            .map(|t| {
                let n = f32::from(u8::try_from(t.len() % 7).unwrap()) + 1.0;
                let v = [n, 1.0, 0.5, 0.25];
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

#[test]
fn without_the_model_items_are_deferred_then_embedded_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        &dir.path().join("keel.db"),
        crate::core::store::Durability::Normal,
    )
    .unwrap();
    let model = std::sync::Arc::new(LateModel {
        ready: false.into(),
    });
    let memory = Memory::with_embedders(
        &dir.path().join("vectors"),
        crate::core::memory::MemoryConfig::default(),
        &mut store,
        vec![model.clone()],
        std::sync::Arc::new(crate::core::clock::ManualClock::at(1_000)),
    )
    .unwrap();
    let item = NewItem {
        text: "Pricing teardowns outperform everything".into(),
        kind: "insight".into(),
        source: "test".into(),
        ..NewItem::default()
    };
    assert!(
        add(&mut store, &memory, &Actor::Operator, &item).is_err(),
        "plain add needs the model"
    );
    let Added::Stored { id, .. } =
        add_or_defer(&mut store, &memory, &Actor::Operator, &item).unwrap()
    else {
        panic!("stored")
    };
    let found: String = store
        .conn()
        .query_row(
            "SELECT c.item FROM memory_fts f JOIN memory_chunks c ON c.id = f.rowid WHERE memory_fts MATCH 'teardowns'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(found, id, "keyword-searchable at once");
    assert!(
        !crate::core::memory::check::check(store.conn(), &memory)
            .unwrap()
            .is_consistent()
    );
    model.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let after = crate::core::memory::check::repair(&mut store, &memory).unwrap();
    assert!(after.is_consistent(), "{after:?}");
}

#[test]
fn figures_tell_apart_facts_that_differ_in_numbers() {
    assert_eq!(
        figures("Contract ACME-77 renews on 1 July."),
        figures("contract acme-77 renews, on 1 july")
    );
    assert_ne!(
        figures("Contract ACME-77 renews on 1 July."),
        figures("Contract ACME-71 renews on 1 June.")
    );
    assert!(figures("no numbers here").is_empty());
}

#[test]
fn tags_are_normalised_and_validated() {
    assert_eq!(
        clean_tags(&[" B".into(), "a".into(), "b".into(), String::new()]).unwrap(),
        vec!["a", "b"]
    );
    assert!(clean_tags(&["two words".into()]).is_err());
}

#[test]
fn texts_are_validated() {
    assert!(validate_text("ok", 10).is_ok());
    assert!(validate_text(" \n", 10).is_err());
    assert!(validate_text("0123456789x", 10).is_err());
    assert!(validate_text("a\0b", 10).is_err());
}
