//! Hybrid search: filters, keyword and vector candidates, fusion.

use super::*;
use crate::core::memory::Tier;

#[test]
fn fts_query_quotes_content_words_and_drops_stopwords() {
    assert_eq!(
        fts_query("When is INV-2291 due?").as_deref(),
        Some("\"2291\" OR \"due\" OR \"inv\"")
    );
    // Only stopwords: use them rather than nothing.
    assert_eq!(
        fts_query("who are you").as_deref(),
        Some("\"are\" OR \"who\" OR \"you\"")
    );
    assert_eq!(fts_query(" -- ?! "), None);
    // Quotes and operators in the input cannot break the FTS syntax.
    assert_eq!(fts_query("a\" OR NEAR(").as_deref(), Some("\"near\""));
}

#[test]
fn preview_is_the_first_line_cut_short() {
    assert_eq!(preview("one line"), "one line");
    assert_eq!(preview("first\nsecond"), "first…");
    assert_eq!(preview(&"x".repeat(200)).chars().count(), 121);
}

#[test]
fn filters_build_parameterised_sql() {
    let f = Filters {
        kinds: vec!["fact".into(), "note".into()],
        tiers: vec![Tier::Long],
        tags: vec!["Billing".into()],
        object: Some(("customer".into(), "c1".into())),
    };
    let (sql, args) = f.sql();
    assert_eq!(sql.matches('?').count(), 1 + args.len());
    assert!(args.contains(&SqlValue::Text("billing".into())));
}
