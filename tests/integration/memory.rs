//! Memory with the real embedding model, real `SQLite` and real LMDB. The model must be
//! installed (`keel models fetch`); these tests fail, never skip, when it is missing.

// Test helpers may unwrap; metric arithmetic casts counts to floats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    clippy::many_single_char_names
)]

use std::path::Path;
use std::sync::Arc;

use keel::core::audit::{self, Actor};
use keel::core::clock::{Clock, ManualClock};
use keel::core::memory::kb::{self, Added, NewItem};
use keel::core::memory::retrieval;
use keel::core::memory::search::{self, Filters, Fusion, SearchParams};
use keel::core::memory::triage::{Example, Triage, TriageConfig};
use keel::core::memory::vectors::VectorStore;
use keel::core::memory::{
    Embed, Embedder, EmbeddingVersion, Memory, MemoryConfig, Tier, check, import, versions,
};
use keel::core::store::Store;
use keel::core::workspace::Workspace;

use super::support::keel;

const T0: i64 = 1_790_000_000_000;

/// The shared real model; panics with the fetch instruction when it is not installed.
fn model() -> Arc<dyn Embed> {
    let e = Embedder::shared().expect("start embedder");
    if let Err(err) = e.wait_ready() {
        panic!("the embedding model is required for this test: {err}");
    }
    Arc::new(e)
}

struct Fixture {
    dir: tempfile::TempDir,
    ws: Workspace,
    store: Store,
    memory: Memory,
    clock: ManualClock,
}

fn fixture() -> Fixture {
    fixture_with(vec![model()])
}

fn fixture_with(embedders: Vec<Arc<dyn Embed>>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::init(&dir.path().join("ws")).unwrap();
    let mut store = ws.store().unwrap();
    let clock = ManualClock::at(T0);
    let memory = Memory::with_embedders(
        &ws.vectors_dir(),
        MemoryConfig::default(),
        &mut store,
        embedders,
        Arc::new(clock.clone()),
    )
    .unwrap();
    Fixture {
        dir,
        ws,
        store,
        memory,
        clock,
    }
}

fn item(text: &str, kind: &str) -> NewItem {
    NewItem {
        text: text.into(),
        kind: kind.into(),
        source: "test".into(),
        ..NewItem::default()
    }
}

fn add(f: &mut Fixture, text: &str, kind: &str) -> String {
    match kb::add(&mut f.store, &f.memory, &Actor::Operator, &item(text, kind)).unwrap() {
        Added::Stored { id, .. } => id,
        Added::Duplicate(d) => panic!(
            "unexpected duplicate of {} ({}): {text}",
            d.existing, d.similarity
        ),
    }
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    keel::core::memory::embed::cosine(a, b)
}

#[test]
fn similar_texts_are_closer_than_unrelated_ones() {
    let m = model();
    let v = m
        .embed(&[
            "The invoice for March is overdue.".to_string(),
            "Last month's bill has not been paid yet.".to_string(),
            "Tomatoes grow best in full sun.".to_string(),
        ])
        .unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].len(), 384);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-3,
        "vectors are unit length, got {norm}"
    );
    assert!(
        cos(&v[0], &v[1]) > cos(&v[0], &v[2]) + 0.2,
        "{} vs {}",
        cos(&v[0], &v[1]),
        cos(&v[0], &v[2])
    );
    assert_eq!(m.version().id(), EmbeddingVersion::builtin().id());
    assert!(
        m.version()
            .id()
            .starts_with("all-MiniLM-L6-v2-int8@8199be6f699a/384")
    );
}

#[test]
fn hybrid_search_finds_by_meaning_and_by_keyword_with_filters() {
    let mut f = fixture();
    let a = add(
        &mut f,
        "Customers who pay annually get two months free on the Pro plan.",
        "fact",
    );
    let b = add(
        &mut f,
        "Invoice INV-2291 for Bergmann GmbH is overdue since March.",
        "fact",
    );
    let mut tagged = item(
        "The operator prefers an informal tone without emojis.",
        "preference",
    );
    tagged.tags = vec!["Style".into(), "social".into()];
    let Added::Stored { id: c, .. } =
        kb::add(&mut f.store, &f.memory, &Actor::Operator, &tagged).unwrap()
    else {
        panic!("dup")
    };
    let p = SearchParams::default();
    let r = search::search(f.store.conn(), &f.memory, "discount for yearly billing", &p).unwrap();
    assert_eq!(r.hits[0].item, a);
    assert!(r.hits[0].vector_rank.is_some());
    let r = search::search(f.store.conn(), &f.memory, "INV-2291", &p).unwrap();
    assert_eq!(r.hits[0].item, b);
    assert_eq!(r.hits[0].keyword_rank, Some(1));

    let only_prefs = SearchParams {
        filters: Filters {
            kinds: vec!["preference".into()],
            ..Filters::default()
        },
        ..SearchParams::default()
    };
    let r = search::search(f.store.conn(), &f.memory, "invoice overdue", &only_prefs).unwrap();
    assert_eq!(
        r.hits.iter().map(|h| h.item.clone()).collect::<Vec<_>>(),
        vec![c.clone()]
    );
    let by_tag = SearchParams {
        filters: Filters {
            tags: vec!["style".into()],
            tiers: vec![Tier::Long],
            ..Filters::default()
        },
        ..SearchParams::default()
    };
    let r = search::search(f.store.conn(), &f.memory, "pricing", &by_tag).unwrap();
    assert_eq!(r.hits.len(), 1);
    assert_eq!(r.hits[0].item, c);
    let none = SearchParams {
        filters: Filters {
            tiers: vec![Tier::Task],
            ..Filters::default()
        },
        ..SearchParams::default()
    };
    assert!(
        search::search(f.store.conn(), &f.memory, "pricing", &none)
            .unwrap()
            .hits
            .is_empty()
    );
}

#[test]
fn near_duplicates_are_reported_not_silently_stored() {
    let mut f = fixture();
    let first = add(
        &mut f,
        "Our refund policy: full money back within 30 days of purchase.",
        "fact",
    );
    let again = kb::add(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &item(
            "Our refund policy: full money back within 30 days of purchase!",
            "fact",
        ),
    )
    .unwrap();
    let Added::Duplicate(d) = again else {
        panic!("expected a duplicate, got {again:?}")
    };
    assert_eq!(d.existing, first);
    assert!(d.similarity >= 0.95);
    let count: i64 = f
        .store
        .conn()
        .query_row("SELECT count(*) FROM memory_items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    let dup_audits = audit::query(
        f.store.conn(),
        &audit::Filter {
            action: Some("memory.duplicate".into()),
            ..audit::Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(dup_audits.len(), 1);
    // Forced: stored and linked.
    let mut forced = item(
        "Our refund policy: full money back within 30 days of purchase!",
        "fact",
    );
    forced.allow_duplicate = true;
    let Added::Stored {
        id, duplicate_of, ..
    } = kb::add(&mut f.store, &f.memory, &Actor::Operator, &forced).unwrap()
    else {
        panic!("forced add must store")
    };
    assert_eq!(duplicate_of.unwrap().existing, first);
    assert_eq!(
        kb::get(f.store.conn(), &id).unwrap().unwrap().duplicate_of,
        Some(first)
    );
    // Unrelated text is not a duplicate.
    add(&mut f, "Tomatoes grow best in full sun.", "note");
}

#[test]
fn bad_inputs_are_refused_clearly_and_lose_nothing() {
    let mut f = fixture();
    add(&mut f, "A fact that must survive.", "fact");
    for (text, needle) in [("   \n ", "empty"), ("bin\0ary", "NUL")] {
        let err = kb::add(
            &mut f.store,
            &f.memory,
            &Actor::Operator,
            &item(text, "fact"),
        )
        .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let huge = "word ".repeat(300_000);
    let err = kb::add(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &item(&huge, "fact"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let err = kb::add(&mut f.store, &f.memory, &Actor::Operator, &item("ok", " ")).unwrap_err();
    assert!(err.to_string().contains("kind"), "{err}");
    let err =
        search::search(f.store.conn(), &f.memory, "  ", &SearchParams::default()).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = kb::forget(&mut f.store, &f.memory, &Actor::Operator, "nope", "").unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    let pinned = SearchParams {
        embedding: Some("other-model@000000000000/384".into()),
        ..SearchParams::default()
    };
    assert!(search::search(f.store.conn(), &f.memory, "fact", &pinned).is_err());
    let items: i64 = f
        .store
        .conn()
        .query_row("SELECT count(*) FROM memory_items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(items, 1);
    assert!(
        check::check(f.store.conn(), &f.memory)
            .unwrap()
            .is_consistent()
    );
}

#[test]
fn long_texts_are_chunked_and_every_part_is_searchable() {
    let mut f = fixture();
    let filler = "The quarterly report discusses revenue and costs in general terms. ".repeat(40);
    let text = format!(
        "{filler} The warehouse in Rotterdam closes for inventory on the first Monday of August."
    );
    let Added::Stored { id, chunks, .. } = kb::add(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &item(&text, "note"),
    )
    .unwrap() else {
        panic!()
    };
    assert!(chunks >= 3, "{chunks}");
    add(&mut f, "Our office is closed on public holidays.", "note");
    let r = search::search(
        f.store.conn(),
        &f.memory,
        "when does the Rotterdam warehouse close",
        &SearchParams::default(),
    )
    .unwrap();
    assert_eq!(r.hits[0].item, id);
}

#[test]
fn retrieval_records_provenance_and_is_deterministic() {
    let mut f = fixture();
    for (i, t) in CORPUS.iter().enumerate() {
        let _ = i;
        add(&mut f, t, "fact");
    }
    let params = SearchParams {
        k: 5,
        ..SearchParams::default()
    };
    let a = retrieval::retrieve(
        &mut f.store,
        &f.memory,
        "run-1",
        "how long does delivery abroad take",
        &params,
    )
    .unwrap();
    let b = retrieval::retrieve(
        &mut f.store,
        &f.memory,
        "run-1",
        "how long does delivery abroad take",
        &params,
    )
    .unwrap();
    assert_eq!(a.hits.len(), 5);
    assert_eq!(
        a.hits
            .iter()
            .map(|h| (&h.item, h.score.to_bits()))
            .collect::<Vec<_>>(),
        b.hits
            .iter()
            .map(|h| (&h.item, h.score.to_bits()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        a.params.embedding.as_deref(),
        Some(f.memory.current_version().id().as_str())
    );

    // Provenance rows.
    let stored = retrieval::for_run(f.store.conn(), "run-1").unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].hits,
        a.hits
            .iter()
            .map(|h| keel::core::memory::SearchHit {
                vector_rank: None,
                keyword_rank: None,
                similarity: None,
                tier: String::new(),
                ..h.clone()
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(stored[0].params, a.params);
    let used = retrieval::memory_used(f.store.conn(), "run-1").unwrap();
    assert_eq!(used.len(), 10);
    assert_eq!(used[0].item, a.hits[0].item);
    assert_eq!(used[0].rank, 1);
    assert_eq!(used[0].version, 1);
    let audits = audit::query(
        f.store.conn(),
        &audit::Filter {
            action: Some("memory.retrieve".into()),
            ..audit::Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(audits.len(), 2);
    assert_eq!(audits[0].actor, "agent:run-1");

    // Unchanged data: explain says so.
    let ex = retrieval::explain(f.store.conn(), &f.memory, "run-1").unwrap();
    assert!(ex.iter().all(|e| e.unchanged), "{ex:?}");

    // Forget the top item and promote another: explain shows the difference.
    let top = a.hits[0].item.clone();
    kb::forget(&mut f.store, &f.memory, &Actor::Operator, &top, "outdated").unwrap();
    let second = a.hits[1].item.clone();
    kb::set_tier(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &second,
        Tier::Long,
        None,
    )
    .unwrap();
    let ex = retrieval::explain(f.store.conn(), &f.memory, "run-1").unwrap();
    assert!(!ex[0].unchanged);
    assert!(
        ex[0].diff.contains(&format!("-{:>2} {top} v1", 1)),
        "{}",
        ex[0].diff
    );
    assert!(
        ex[0].diff.contains(&format!("{second} v2")),
        "{}",
        ex[0].diff
    );
    // The recorded rows are untouched by later changes.
    assert_eq!(
        retrieval::memory_used(f.store.conn(), "run-1").unwrap(),
        used
    );
    assert!(
        audit::verify(f.store.conn())
            .unwrap()
            .first_broken
            .is_none()
    );
}

#[test]
fn task_state_expires_and_the_sweep_is_audited() {
    let mut f = fixture();
    let mut art = item(
        "Draft outline for the spring campaign, version 3.",
        "artifact",
    );
    art.tier = Some(Tier::Task);
    art.run_id = Some("run-9".into());
    art.ttl_ms = Some(60_000);
    let Added::Stored { id: short, .. } =
        kb::add(&mut f.store, &f.memory, &Actor::agent("run-9"), &art).unwrap()
    else {
        panic!()
    };
    let mut default_ttl = item("Scratch notes about competitor pricing pages.", "artifact");
    default_ttl.tier = Some(Tier::Task);
    let Added::Stored { id: long_lived, .. } = kb::add(
        &mut f.store,
        &f.memory,
        &Actor::agent("run-9"),
        &default_ttl,
    )
    .unwrap() else {
        panic!()
    };
    let kept = add(&mut f, "The spring campaign launches on 1 April.", "fact");
    assert!(kb::sweep(&mut f.store, &f.memory).unwrap().is_empty());
    f.clock.advance(60_000);
    // Expired items disappear from search even before the sweep runs.
    let r = search::search(
        f.store.conn(),
        &f.memory,
        "spring campaign outline draft",
        &SearchParams::default(),
    )
    .unwrap();
    assert!(r.hits.iter().all(|h| h.item != short));
    assert_eq!(
        kb::sweep(&mut f.store, &f.memory).unwrap(),
        vec![short.clone()]
    );
    assert!(kb::get(f.store.conn(), &short).unwrap().is_none());
    assert!(kb::get(f.store.conn(), &kept).unwrap().is_some());
    // Promoting to long-term removes the expiry; demoting sets one.
    kb::set_tier(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &long_lived,
        Tier::Long,
        None,
    )
    .unwrap();
    f.clock.advance(1000 * 3_600_000);
    assert!(kb::sweep(&mut f.store, &f.memory).unwrap().is_empty());
    kb::set_tier(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &kept,
        Tier::Task,
        Some(1),
    )
    .unwrap();
    f.clock.advance(1);
    assert_eq!(kb::sweep(&mut f.store, &f.memory).unwrap(), vec![kept]);
    let sweeps = audit::query(
        f.store.conn(),
        &audit::Filter {
            action: Some("memory.sweep".into()),
            ..audit::Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(sweeps.len(), 2);
    assert!(
        check::check(f.store.conn(), &f.memory)
            .unwrap()
            .is_consistent()
    );
    // The keyword index lost the swept chunks too (FTS5 checks itself against the chunks).
    f.store
        .conn()
        .execute(
            "INSERT INTO memory_fts(memory_fts) VALUES('integrity-check')",
            [],
        )
        .unwrap();
    let hits = search::search(
        f.store.conn(),
        &f.memory,
        "outline",
        &SearchParams {
            fusion: Fusion::KeywordOnly,
            ..SearchParams::default()
        },
    )
    .unwrap();
    assert!(hits.hits.is_empty(), "{hits:?}");
}

/// A small labelled set: queries that need meaning (their words appear in distractors), and
/// queries that need exact identifiers (near-miss identifiers in similar distractors).
const CORPUS: [&str; 30] = [
    "Customers who pay annually get two months free on the Pro plan.",
    "Our refund policy: full money back within 30 days of purchase, no questions asked.",
    "Newsletters go out every Tuesday morning at 8am Central European Time.",
    "The operator prefers a friendly, informal tone without emojis in all social posts.",
    "Shipping to Canada takes about two weeks and costs 15 euros.",
    "Invoice INV-2291 for Bergmann GmbH is overdue since March.",
    "Contract ACME-77 renews automatically on 1 July unless cancelled in writing.",
    "The Zorblax plugin license key is stored in the vault under ops.",
    "Customer Quentin Vasquez-Oyelaran asked for a custom logo package.",
    "Promo code SPRING24 gives 20 percent off until April 30.",
    "Invoice INV-2219 for Keller AG is overdue since February.",
    "Invoice INV-2921 for Nordlicht Studio is overdue since January.",
    "The Pro plan costs 29 euros per month; the Basic plan costs 9 euros.",
    "Email support replies within one business day.",
    "Contract ACME-71 renews automatically on 1 June unless cancelled in writing.",
    "Promo code SPRING23 gave 20 percent off until April 30 last year.",
    "Customer Quentin Vasquez-Olayemi asked for a custom website package.",
    "The Zorbex theme license key is stored in the vault under design.",
    "Paying by card or bank transfer gives no discount.",
    "Cash from a buyer at the market stall is counted and returned to the safe each evening.",
    "The weekly export of the mailing list is sent out to the accountant on Fridays.",
    "Our social channels are Instagram, LinkedIn and Mastodon.",
    "Delivery to the North office of the printer takes one day.",
    "Our accountant files the VAT return every quarter.",
    "The website is hosted on a small VPS in Frankfurt.",
    "Product photos must have a white background.",
    "Quarterly revenue grew 12 percent compared with last year.",
    "The logo files are in the brand folder on the shared drive.",
    "Customer complaints are escalated to the operator within 24 hours.",
    "The backup of the customer database runs every night at 2am.",
];

/// (query, index of the relevant document)
const QUERIES: [(&str, usize); 10] = [
    ("discount for paying yearly", 0),
    ("can a buyer get their cash returned", 1),
    ("when is the weekly mailing sent out", 2),
    ("voice and style for our social channels", 3),
    ("how long is delivery to North America", 4),
    ("INV-2291", 5),
    ("ACME-77 renewal date", 6),
    ("where is the Zorblax key", 7),
    ("what did Vasquez-Oyelaran request", 8),
    ("SPRING24", 9),
];

fn mrr(f: &Fixture, ids: &[String], fusion: Fusion) -> f64 {
    let params = SearchParams {
        k: 10,
        fusion,
        ..SearchParams::default()
    };
    let mut total = 0.0;
    for (q, want) in QUERIES {
        let r = search::search(f.store.conn(), &f.memory, q, &params).unwrap();
        let pos = r.hits.iter().position(|h| h.item == ids[want]);
        eprintln!("{fusion:?} {q:?}: rank {:?}", pos.map(|p| p + 1));
        if let Some(pos) = pos {
            total += 1.0 / (pos as f64 + 1.0);
        }
    }
    total / QUERIES.len() as f64
}

#[test]
fn hybrid_beats_vector_only_and_keyword_only() {
    let mut f = fixture();
    let ids: Vec<String> = CORPUS.iter().map(|t| add(&mut f, t, "fact")).collect();
    let hybrid = mrr(&f, &ids, Fusion::Rrf);
    let vector = mrr(&f, &ids, Fusion::VectorOnly);
    let keyword = mrr(&f, &ids, Fusion::KeywordOnly);
    eprintln!("MRR@10 hybrid {hybrid:.3} vector {vector:.3} keyword {keyword:.3}");
    assert!(hybrid > vector, "hybrid {hybrid} vs vector {vector}");
    assert!(hybrid > keyword, "hybrid {hybrid} vs keyword {keyword}");
    assert!(hybrid >= 0.75, "hybrid {hybrid}");
}

#[test]
fn triage_routes_by_nearest_labelled_examples() {
    let mut f = fixture();
    let ex = |facet: &str, label: &str, text: &str| Example {
        facet: facet.into(),
        label: label.into(),
        text: text.into(),
    };
    let config = TriageConfig {
        examples: vec![
            ex(
                "route",
                "writer",
                "Please draft a blog post about our new product.",
            ),
            ex(
                "route",
                "writer",
                "Write a newsletter announcing the summer sale.",
            ),
            ex(
                "route",
                "writer",
                "Can you write copy for the landing page?",
            ),
            ex(
                "route",
                "accountant",
                "Here is the invoice for last month's hosting.",
            ),
            ex(
                "route",
                "accountant",
                "Please reconcile the bank statement for March.",
            ),
            ex("route", "accountant", "We need to file the VAT return."),
            ex(
                "route",
                "scheduler",
                "Can we move our call to Thursday afternoon?",
            ),
            ex(
                "route",
                "scheduler",
                "Book a meeting with the designer next week.",
            ),
            ex(
                "route",
                "scheduler",
                "Please reschedule the podcast recording.",
            ),
            ex(
                "spam",
                "spam",
                "You have won a free iPhone, click here to claim your prize!",
            ),
            ex(
                "spam",
                "spam",
                "Cheap pills without prescription, best prices online.",
            ),
            ex(
                "spam",
                "spam",
                "Increase your website traffic 1000% guaranteed, SEO offer.",
            ),
            ex("spam", "ok", "Hi, I'd like to order two of your posters."),
            ex("spam", "ok", "Could you send me the invoice for my order?"),
            ex(
                "spam",
                "ok",
                "Thanks for the quick delivery, the print looks great.",
            ),
        ],
        ..TriageConfig::default()
    };
    let triage = Triage::new(model(), config, Arc::new(f.clock.clone()));
    let cases = [
        (
            "Could you write an article about spring gardening for our blog?",
            "writer",
            "ok",
        ),
        ("Draft an email campaign for Black Friday.", "writer", "ok"),
        (
            "The electricity bill arrived, please book it in the ledger.",
            "accountant",
            "ok",
        ),
        (
            "What were our total expenses for the quarter?",
            "accountant",
            "ok",
        ),
        ("Let's meet on Friday at 10 instead.", "scheduler", "ok"),
        (
            "Please put a call with the printer on my calendar.",
            "scheduler",
            "ok",
        ),
        (
            "Congratulations! You are selected for a cash reward, click now.",
            "writer",
            "spam",
        ),
        (
            "Buy cheap watches, replica luxury brands, huge discount!!!",
            "writer",
            "spam",
        ),
        (
            "Guaranteed first page on Google, our SEO agency can help.",
            "writer",
            "spam",
        ),
        (
            "I want to order a large canvas print, do you ship to Austria?",
            "writer",
            "ok",
        ),
    ];
    let (mut route_ok, mut route_n, mut spam_ok) = (0, 0, 0);
    for (text, route, spam) in cases {
        let d = triage
            .classify(&mut f.store, &Actor::system("inbox"), text)
            .unwrap();
        assert_eq!(d.len(), 2);
        let r = d.iter().find(|x| x.facet == "route").unwrap();
        let s = d.iter().find(|x| x.facet == "spam").unwrap();
        assert!((0.0..=1.0).contains(&r.confidence));
        if spam == "ok" && !text.contains("order") {
            route_n += 1;
            route_ok += usize::from(r.label.as_deref() == Some(route));
        }
        spam_ok += usize::from(s.label.as_deref() == Some(spam));
    }
    eprintln!("triage: route {route_ok}/{route_n}, spam {spam_ok}/10");
    assert!(
        route_ok * 10 >= route_n * 8,
        "route accuracy {route_ok}/{route_n}"
    );
    assert!(spam_ok >= 8, "spam accuracy {spam_ok}/10");
    let decisions: i64 = f
        .store
        .conn()
        .query_row("SELECT count(*) FROM triage_decisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(decisions, 20);

    // An unrelated item is not confident: it goes to the operator, whose answer is learned.
    let odd = "The quantum chromodynamics lecture covers gluon confinement.";
    let d = triage
        .classify(&mut f.store, &Actor::system("inbox"), odd)
        .unwrap();
    let r = d.iter().find(|x| x.facet == "route").unwrap().clone();
    assert_eq!(r.routed, "operator", "confidence {}", r.confidence);
    triage
        .resolve(&mut f.store, &Actor::Operator, &r.id, "researcher")
        .unwrap();
    let d = triage
        .classify(
            &mut f.store,
            &Actor::system("inbox"),
            "Notes from the quantum chromodynamics lecture on gluons.",
        )
        .unwrap();
    let r = d.iter().find(|x| x.facet == "route").unwrap();
    assert_eq!(r.label.as_deref(), Some("researcher"));
    let audits = audit::query(
        f.store.conn(),
        &audit::Filter {
            action: Some("triage.resolve".into()),
            ..audit::Filter::default()
        },
        10,
        true,
    )
    .unwrap();
    assert_eq!(audits.len(), 1);
    assert!(
        triage
            .resolve(&mut f.store, &Actor::Operator, "missing", "x")
            .is_err()
    );
}

/// A second "model": the real one under another identity, to exercise the migration.
struct Renamed(Arc<dyn Embed>);
impl Embed for Renamed {
    fn version(&self) -> EmbeddingVersion {
        EmbeddingVersion {
            name: "renamed-model".into(),
            sha256: "ab".repeat(32),
            dims: 384,
        }
    }
    fn embed(&self, texts: &[String]) -> keel::core::Result<Vec<Vec<f32>>> {
        self.0.embed(texts)
    }
}

#[test]
fn a_new_model_migrates_while_the_old_index_keeps_answering() {
    let mut f = fixture();
    let ids: Vec<String> = CORPUS[..10]
        .iter()
        .map(|t| add(&mut f, t, "fact"))
        .collect();
    let old = f.memory.current_version().id();
    let new_model: Arc<dyn Embed> = Arc::new(Renamed(model()));
    let new = new_model.version().id();
    let mut memory = Memory::with_embedders(
        &f.ws.vectors_dir(),
        MemoryConfig::default(),
        &mut f.store,
        vec![new_model, model()],
        Arc::new(f.clock.clone()),
    )
    .unwrap();
    memory.config.duplicate_threshold = 0.99;
    let v = versions::get(f.store.conn(), &new).unwrap().unwrap();
    assert_eq!(v.state, "building");
    // Until the migration completes, the default query uses the old index.
    let r = search::search(
        f.store.conn(),
        &memory,
        "discount for paying yearly",
        &SearchParams::default(),
    )
    .unwrap();
    assert_eq!(r.embedding, old);
    assert_eq!(r.hits[0].item, ids[0]);
    // An add during the migration lands in both indexes.
    let Added::Stored { id: late, .. } = kb::add(
        &mut f.store,
        &memory,
        &Actor::Operator,
        &item(CORPUS[12], "fact"),
    )
    .unwrap() else {
        panic!()
    };
    let handle = versions::migrate_in_background(
        f.ws.db_path(),
        keel::core::store::Durability::Full,
        memory.clone(),
    );
    while !handle.is_finished() {
        // Meanwhile the old index answers.
        let r = search::search(
            f.store.conn(),
            &memory,
            "discount for paying yearly",
            &SearchParams::default(),
        )
        .unwrap();
        assert_eq!(r.hits[0].item, ids[0]);
    }
    let report = handle.join().unwrap().unwrap();
    assert!(report.completed);
    assert_eq!(report.embedded, 10);
    assert_eq!(report.retired, vec![old.clone()]);
    let r = search::search(
        f.store.conn(),
        &memory,
        "price of the basic plan",
        &SearchParams::default(),
    )
    .unwrap();
    assert_eq!(r.embedding, new);
    assert_eq!(r.hits[0].item, late);
    // A query pinned to the retired version still uses it.
    let pinned = SearchParams {
        embedding: Some(old.clone()),
        ..SearchParams::default()
    };
    let r = search::search(
        f.store.conn(),
        &memory,
        "discount for paying yearly",
        &pinned,
    )
    .unwrap();
    assert_eq!(r.embedding, old);
    assert_eq!(r.hits[0].item, ids[0]);
    assert!(
        check::check(f.store.conn(), &memory)
            .unwrap()
            .is_consistent()
    );
}

#[test]
fn check_finds_and_repair_fixes_index_disagreements() {
    let mut f = fixture();
    let ids: Vec<String> = CORPUS[..5].iter().map(|t| add(&mut f, t, "fact")).collect();
    let v = versions::get(f.store.conn(), &f.memory.current_version().id())
        .unwrap()
        .unwrap();
    let chunk: u32 = f
        .store
        .conn()
        .query_row(
            "SELECT id FROM memory_chunks WHERE item = ?1",
            [&ids[2]],
            |r| r.get(0),
        )
        .unwrap();
    // Behind SQLite's back: drop one vector, add an orphan.
    f.memory
        .vectors()
        .remove(v.arroy_index, v.dims, &[chunk])
        .unwrap();
    f.memory
        .vectors()
        .add(v.arroy_index, v.dims, &[(999_999, vec![0.5; 384])])
        .unwrap();
    let report = check::check(f.store.conn(), &f.memory).unwrap();
    assert!(!report.is_consistent());
    assert_eq!(report.versions[0].missing, vec![chunk]);
    assert_eq!(report.versions[0].orphans, vec![999_999]);
    let after = check::repair(&mut f.store, &f.memory).unwrap();
    assert!(after.is_consistent(), "{after:?}");
    let r = search::search(
        f.store.conn(),
        &f.memory,
        "the newsletter schedule",
        &SearchParams {
            fusion: Fusion::VectorOnly,
            ..SearchParams::default()
        },
    )
    .unwrap();
    assert_eq!(r.hits[0].item, ids[2]);
}

#[test]
fn lmdb_map_grows_when_full_and_fails_clearly_at_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let store = VectorStore::open_sized(dir.path(), 1 << 20).unwrap();
    let start = store.map_size();
    let vectors: Vec<(u32, Vec<f32>)> = (0..1500u32)
        .map(|i| {
            (
                i,
                (0..384)
                    .map(|d| ((i * 31 + d * 7) % 97) as f32 / 97.0 - 0.5)
                    .collect(),
            )
        })
        .collect();
    store.add(0, 384, &vectors).unwrap();
    assert!(
        store.map_size() > start,
        "the map grew from {start} to {}",
        store.map_size()
    );
    assert_eq!(store.ids(0).unwrap().len(), 1500);
    store.set_max_map(store.map_size());
    let more: Vec<(u32, Vec<f32>)> = (1500..6000u32)
        .map(|i| {
            (
                i,
                (0..384)
                    .map(|d| ((i * 13 + d * 5) % 89) as f32 / 89.0 - 0.5)
                    .collect(),
            )
        })
        .collect();
    let err = store.add(0, 384, &more).unwrap_err();
    assert!(err.to_string().contains("full"), "{err}");
    // Nothing half-written: the index still holds exactly the first batch and answers.
    assert_eq!(store.ids(0).unwrap().len(), 1500);
    let hits = store.search(0, &vectors[7].1, 1, None, None).unwrap();
    assert_eq!(hits[0].id, 7);
}

#[test]
fn recall_at_10_against_brute_force_is_at_least_095() {
    let dir = tempfile::tempdir().unwrap();
    let store = VectorStore::open(dir.path()).unwrap();
    let (vectors, queries) = keel::bench::memory::synthetic_corpus(5_000, 50, 384, 7);
    store.add(0, 384, &vectors).unwrap();
    let recall = keel::bench::memory::recall_at_10(&store, 0, &vectors, &queries, None);
    eprintln!("recall@10 = {recall:.3}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn import_reports_skipped_files() {
    let mut f = fixture();
    let src = f.dir.path().join("docs");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(
        src.join("a.md"),
        "# Pricing\nThe Pro plan costs 29 euros per month.",
    )
    .unwrap();
    std::fs::write(
        src.join("sub/b.txt"),
        "Support answers within one business day.",
    )
    .unwrap();
    std::fs::write(
        src.join("c.csv"),
        "name,prefers\nAnna Schmidt,phone calls\n\"Lee, Jo\",\"email, never phone\"\n",
    )
    .unwrap();
    std::fs::write(src.join("empty.txt"), "  \n").unwrap();
    std::fs::write(src.join("bad.txt"), [0x66, 0x6f, 0xff, 0xfe, 0x6f]).unwrap();
    std::fs::write(src.join("bin.md"), [0x50, 0x4b, 0x03, 0x04, 0x00, 0x00]).unwrap();
    std::fs::write(src.join("image.png"), [0x89, 0x50]).unwrap();
    let report = import::import(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &src,
        &import::ImportOptions {
            kind: "doc".into(),
            ..import::ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.added.len(), 4, "{report:?}");
    let skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .map(|s| {
            (
                Path::new(&s.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
                s.reason.clone(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(
        skipped
            .iter()
            .any(|(p, r)| p == "empty.txt" && r == "empty")
    );
    assert!(
        skipped
            .iter()
            .any(|(p, r)| p == "bad.txt" && r.contains("UTF-8"))
    );
    assert!(
        skipped
            .iter()
            .any(|(p, r)| p == "bin.md" && r.contains("binary"))
    );
    assert!(
        skipped
            .iter()
            .any(|(p, r)| p == "image.png" && r.contains("unsupported"))
    );
    let r = search::search(
        f.store.conn(),
        &f.memory,
        "Lee Jo",
        &SearchParams::default(),
    )
    .unwrap();
    assert!(r.hits[0].preview.contains("Lee, Jo"), "{:?}", r.hits[0]);
    // Importing again finds only duplicates.
    let again = import::import(
        &mut f.store,
        &f.memory,
        &Actor::Operator,
        &src,
        &import::ImportOptions {
            kind: "doc".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(again.added.is_empty());
    assert_eq!(again.duplicates.len(), 4);
}

#[test]
fn cli_search_is_identical_across_restarts_and_explain_shows_the_run() {
    let (dir, ws) = super::support::temp_workspace();
    let out = keel(
        &ws,
        &[
            "memory", "add", "--kind", "fact", "--tag", "billing", CORPUS[0],
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    for (i, t) in CORPUS[1..12].iter().enumerate() {
        std::fs::write(docs.join(format!("{i:02}.txt")), t).unwrap();
    }
    std::fs::write(docs.join("zz.bin.txt"), [0u8, 1, 2, 3]).unwrap();
    let out = keel(
        &ws,
        &["memory", "import", "--kind", "fact", docs.to_str().unwrap()],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("imported 11 item(s)") && report.contains("zz.bin.txt: binary"),
        "{report}"
    );
    let search = |extra: &[&str]| {
        let mut args = vec!["memory", "search", "--json", "-k", "5"];
        args.extend_from_slice(extra);
        args.push("invoice overdue");
        let out = keel(&ws, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = search(&["--run", "run-cli"]);
    let second = search(&[]);
    let v1: serde_json::Value = serde_json::from_str(&first).unwrap();
    let v2: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(
        v1["hits"], v2["hits"],
        "same ids and scores in separate processes"
    );
    assert_eq!(v1["hits"].as_array().unwrap().len(), 5);
    let out = keel(&ws, &["memory", "explain", "run-cli"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("unchanged"), "{text}");
    let out = keel(&ws, &["memory", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["items"], 12);
    let out = keel(&ws, &["memory", "check", "--json"]);
    assert!(out.status.success());
    let out = keel(
        &ws,
        &["memory", "forget", v1["hits"][0]["item"].as_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = keel(&ws, &["memory", "explain", "run-cli", "--json"]);
    let ex: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ex[0]["unchanged"], false);
}

#[test]
fn missing_model_says_how_to_fetch_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = Embedder::start(keel::core::model_assets::Assets::at(dir.path())).unwrap();
    let err = e.embed(&["hello".to_string()]).unwrap_err().to_string();
    assert!(err.contains("keel models fetch"), "{err}");
    assert!(matches!(
        e.state(),
        keel::core::memory::ModelState::Missing(_)
    ));
    let _ = T0.min(ManualClock::at(0).now_ms());
}

#[test]
fn a_background_rebuild_does_not_block_or_change_readers() {
    let mut f = fixture();
    let ids: Vec<String> = CORPUS.iter().map(|t| add(&mut f, t, "fact")).collect();
    let params = SearchParams {
        fusion: Fusion::VectorOnly,
        k: 5,
        ..SearchParams::default()
    };
    let before = search::search(
        f.store.conn(),
        &f.memory,
        "how long is delivery to North America",
        &params,
    )
    .unwrap();
    let old_index = versions::get(f.store.conn(), &f.memory.current_version().id())
        .unwrap()
        .unwrap()
        .arroy_index;
    let handle = versions::rebuild_in_background(
        f.ws.db_path(),
        keel::core::store::Durability::Full,
        f.memory.clone(),
    );
    // Readers keep answering (from their snapshot) while the rebuild runs.
    let mut searches = 0;
    while !handle.is_finished() {
        let r = search::search(
            f.store.conn(),
            &f.memory,
            "how long is delivery to North America",
            &params,
        )
        .unwrap();
        assert_eq!(
            r.hits.iter().map(|h| &h.item).collect::<Vec<_>>(),
            before.hits.iter().map(|h| &h.item).collect::<Vec<_>>()
        );
        searches += 1;
    }
    assert_eq!(handle.join().unwrap().unwrap(), 30);
    let row = versions::get(f.store.conn(), &f.memory.current_version().id())
        .unwrap()
        .unwrap();
    assert_ne!(row.arroy_index, old_index);
    assert!(
        f.memory.vectors().ids(old_index).unwrap().is_empty(),
        "the old index is cleared"
    );
    let after = search::search(
        f.store.conn(),
        &f.memory,
        "how long is delivery to North America",
        &params,
    )
    .unwrap();
    assert!(after.hits.iter().any(|h| h.item == ids[4]));
    assert_eq!(
        after
            .hits
            .iter()
            .map(|h| (&h.item, h.score.to_bits()))
            .collect::<Vec<_>>(),
        before
            .hits
            .iter()
            .map(|h| (&h.item, h.score.to_bits()))
            .collect::<Vec<_>>()
    );
    assert!(
        check::check(f.store.conn(), &f.memory)
            .unwrap()
            .is_consistent()
    );
    let _ = searches;
}

#[test]
fn model_state_is_forwarded_as_events() {
    let (tx, mut rx) = tokio::sync::broadcast::channel(16);
    let e = keel::core::memory::forward_model_state(tx).unwrap();
    e.wait_ready().unwrap();
    let mut states = Vec::new();
    while let Ok(keel::protocol::Event::ModelState { state }) = rx.try_recv() {
        states.push(state);
    }
    // The current state is sent at once; a process that loaded earlier sees only "ready".
    assert_eq!(
        states.last().map(String::as_str),
        Some("ready"),
        "{states:?}"
    );
}

#[test]
fn the_core_handle_answers_memory_used() {
    let mut f = fixture();
    for t in &CORPUS[..6] {
        add(&mut f, t, "fact");
    }
    let r = retrieval::retrieve(
        &mut f.store,
        &f.memory,
        "run-h",
        "refund policy",
        &SearchParams {
            k: 3,
            ..SearchParams::default()
        },
    )
    .unwrap();
    let handle = keel::core::handle::CoreHandle::start(f.ws.clone()).unwrap();
    let body = handle
        .request_blocking(keel::protocol::Op::Query {
            query: keel::protocol::Query::MemoryUsed {
                run: "run-h".into(),
            },
        })
        .unwrap();
    let rows: Vec<keel::protocol::MemorySliceRow> = body.try_into().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows.iter().map(|r| r.item.clone()).collect::<Vec<_>>(),
        r.hits.iter().map(|h| h.item.clone()).collect::<Vec<_>>()
    );
    assert_eq!(rows[0].rank, 1);
    assert!(
        rows[0].preview.starts_with("Our refund policy"),
        "{:?}",
        rows[0]
    );
    handle.shutdown();
}

#[test]
fn cli_without_the_model_says_what_to_run_and_keyword_search_still_works() {
    let (dir, ws) = super::support::temp_workspace();
    let empty = dir.path().join("no-models");
    let run = |args: &[&str]| {
        std::process::Command::new(super::support::keel_bin())
            .arg("--workspace")
            .arg(&ws)
            .args(args)
            .env("KEEL_MODELS_DIR", &empty)
            .env_remove("KEEL_WORKSPACE")
            .output()
            .unwrap()
    };
    let out = run(&["memory", "add", "a fact"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keel models fetch"), "{err}");
    let out = run(&["memory", "search", "--fusion", "keyword", "fact"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no results"));
    let out = run(&["memory", "stats", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn processes_registering_the_same_embedding_version_at_once_agree_on_one_row() {
    let version = EmbeddingVersion {
        name: "race-model".into(),
        sha256: "ab".repeat(32),
        dims: 8,
    };
    // Each thread is a separate connection, as separate processes are; all start together.
    for _ in 0..20 {
        let (_d, root) = super::support::temp_workspace();
        let ws = Workspace::open(&root).unwrap();
        let barrier = std::sync::Barrier::new(6);
        let rows: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..6)
                .map(|_| {
                    let mut store = ws.store().unwrap();
                    let (barrier, version) = (&barrier, &version);
                    s.spawn(move || {
                        barrier.wait();
                        versions::register(&mut store, version, 1)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for row in &rows {
            let row = row.as_ref().unwrap();
            assert_eq!(
                (row.id.as_str(), row.arroy_index),
                (version.id().as_str(), 0)
            );
        }
        let registered = audit_count_of(&ws, "memory.embedding_register");
        assert_eq!(registered, 1, "registered once, audited once");
    }
}

fn audit_count_of(ws: &Workspace, action: &str) -> usize {
    let store = ws.store().unwrap();
    audit::query(
        store.conn(),
        &audit::Filter {
            action: Some(action.into()),
            ..audit::Filter::default()
        },
        100,
        true,
    )
    .unwrap()
    .len()
}

#[test]
fn a_batch_split_between_sessions_keeps_every_text_with_its_own_vector() {
    let model = model();
    // Enough texts to be split between the two sessions, each unlike its neighbours.
    let texts: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("Invoice {i} for consulting days is overdue"),
            1 => format!("Recipe {i}: bake the bread for forty minutes"),
            2 => format!("Match report {i}: the striker scored twice"),
            _ => format!("Release note {i}: the parser handles empty chunks"),
        })
        .collect();
    let batch = model.embed(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batch) {
        let alone = &model.embed(std::slice::from_ref(text)).unwrap()[0];
        assert!(cos(alone, vector) > 0.999, "{text}: {}", cos(alone, vector));
    }
}
