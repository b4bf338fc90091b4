//! Analytics import from a loopback HTTP JSON endpoint into metric records.

use std::collections::BTreeMap;

use keel::core::connectors::analytics::{MetricRecord, MetricSink, PublicationIndex, import_http};

use super::receiver::Receiver;

struct Published;
impl PublicationIndex for Published {
    fn resolve(&self, reference: &str) -> Option<String> {
        (reference == "launch").then(|| "pub-launch".to_string())
    }
}

#[derive(Default)]
struct Sink(BTreeMap<String, MetricRecord>);
impl MetricSink for Sink {
    fn write(&mut self, records: &[MetricRecord]) -> keel::core::Result<usize> {
        for r in records {
            self.0.insert(r.id.clone(), r.clone());
        }
        Ok(records.len())
    }
}

#[test]
fn http_import_links_rows_to_publications_and_reports_the_rest() {
    let rx = Receiver::start();
    let mut sink = Sink::default();
    let headers = BTreeMap::from([("X-Api-Key".to_string(), "CARGO_PKG_NAME".to_string())]);
    let report = import_http(
        &format!("{}/metrics?token=abc", rx.base),
        &headers,
        &Published,
        &mut sink,
    )
    .unwrap();
    assert_eq!(report.imported, 2);
    let rejected: Vec<(usize, bool)> = report
        .rejected
        .iter()
        .map(|r| {
            (
                r.line,
                r.message.contains("unknown-post") || r.message.contains("not a number"),
            )
        })
        .collect();
    assert_eq!(rejected, vec![(3, true), (4, true)]);
    let signups = sink.0.values().find(|r| r.metric == "signups").unwrap();
    assert_eq!(
        (
            signups.publication.as_str(),
            signups.value,
            signups.date.as_str()
        ),
        ("pub-launch", 14.0, "2026-11-20")
    );
    assert!(
        !signups.source.contains("token"),
        "the query string may hold a secret: {}",
        signups.source
    );
    assert_eq!(
        rx.state.lock().unwrap().requests[0]
            .headers
            .get("x-api-key")
            .map(String::as_str),
        Some("keel")
    );
    // Re-import replaces, never duplicates.
    import_http(
        &format!("{}/metrics", rx.base),
        &headers,
        &Published,
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.0.len(), 2);
    let err = import_http(
        &format!("{}/metrics-broken", rx.base),
        &headers,
        &Published,
        &mut sink,
    )
    .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
}
