//! Analytics import: metric rows from a CSV file or an HTTP JSON endpoint become typed
//! [`MetricRecord`]s linked to publications. Records are written through [`MetricSink`]
//! (the objects/metrics module implements it); a record's id is derived from what it
//! measures, so importing the same data twice replaces rather than duplicates.
//!
//! Columns / fields: `publication` (slug or object id), `metric`, `value`, `date`
//! (`YYYY-MM-DD` or RFC 3339). Other columns are ignored.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::canonical;
use crate::core::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// Stable id: sha256 of (publication, metric, date), shortened.
    pub id: String,
    /// The publication object it belongs to (resolved through [`PublicationIndex`]).
    pub publication: String,
    pub metric: String,
    pub value: f64,
    /// `YYYY-MM-DD`
    pub date: String,
    /// Where it came from (file path or URL without query).
    pub source: String,
}

/// Finds the publication a row refers to (by slug or id).
pub trait PublicationIndex {
    fn resolve(&self, reference: &str) -> Option<String>;
}

/// Stores metric records (upsert by id).
pub trait MetricSink {
    fn write(&mut self, records: &[MetricRecord]) -> Result<usize>;
}

/// What an import did, and each row it rejected (protocol rows).
pub use crate::protocol::{ImportReport, Rejected};

/// One raw row before validation.
struct RawRow {
    line: usize,
    publication: String,
    metric: String,
    value: String,
    date: String,
}

/// Imports CSV `text` (from `source`): parses, validates, links, writes.
pub fn import_csv(
    text: &str,
    source: &str,
    index: &dyn PublicationIndex,
    sink: &mut dyn MetricSink,
) -> Result<ImportReport> {
    let rows = csv_rows(text, source)?;
    finish(rows, source, index, sink)
}

/// Imports from an HTTP endpoint answering a JSON array of objects (or `{"rows": [...]}`).
/// `headers` maps header names to environment variable names.
pub fn import_http(
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    index: &dyn PublicationIndex,
    sink: &mut dyn MetricSink,
) -> Result<ImportReport> {
    let source = url.split(['?', '#']).next().unwrap_or(url).to_string();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Error::failed("cannot build the HTTP client", e))?;
    let mut req = client.get(url).header("Accept", "application/json");
    for (h, var) in headers {
        let v = std::env::var(var).map_err(|_| {
            Error::invalid(
                "analytics import",
                format!("environment variable {var} (for header {h}) is not set"),
            )
        })?;
        req = req.header(h.as_str(), v);
    }
    let resp = req
        .send()
        .map_err(|_| Error::Other(format!("{source}: cannot reach the analytics endpoint")))?;
    if !resp.status().is_success() {
        return Err(Error::Other(format!(
            "{source}: answered {}",
            resp.status()
        )));
    }
    let body: Value = resp
        .json()
        .map_err(|e| Error::invalid("analytics import", format!("{source}: not JSON: {e}")))?;
    let rows = json_rows(&body, &source)?;
    finish(rows, &source, index, sink)
}

fn finish(
    rows: Vec<RawRow>,
    source: &str,
    index: &dyn PublicationIndex,
    sink: &mut dyn MetricSink,
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut records = Vec::new();
    for row in rows {
        match to_record(&row, source, index) {
            Ok(r) => records.push(r),
            Err(message) => report.rejected.push(Rejected {
                line: row.line,
                message,
            }),
        }
    }
    report.imported = sink.write(&records)?;
    Ok(report)
}

fn to_record(
    row: &RawRow,
    source: &str,
    index: &dyn PublicationIndex,
) -> Result<MetricRecord, String> {
    let publication = index.resolve(row.publication.trim()).ok_or_else(|| {
        format!(
            "no publication {:?}: the row is not linked to anything keel published",
            row.publication
        )
    })?;
    let metric = row.metric.trim();
    if metric.is_empty() {
        return Err("empty metric name".into());
    }
    let value: f64 = row
        .value
        .trim()
        .parse()
        .map_err(|_| format!("value {:?} is not a number", row.value))?;
    if !value.is_finite() {
        return Err(format!("value {:?} is not a finite number", row.value));
    }
    let date = parse_date(row.date.trim())?;
    let id = canonical::sha256_hex(format!("{publication}\n{metric}\n{date}").as_bytes())[..32]
        .to_string();
    Ok(MetricRecord {
        id,
        publication,
        metric: metric.to_string(),
        value,
        date,
        source: source.to_string(),
    })
}

fn parse_date(text: &str) -> Result<String, String> {
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return Ok(d.to_string());
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .map_err(|_| format!("date {text:?} is neither YYYY-MM-DD nor RFC 3339"))
}

const COLUMNS: [&str; 4] = ["publication", "metric", "value", "date"];

fn csv_rows(text: &str, source: &str) -> Result<Vec<RawRow>> {
    let records = super::csv::parse(text)
        .map_err(|(line, m)| Error::invalid("CSV", format!("{source}:{line}: {m}")))?;
    let mut iter = records.into_iter();
    let Some((_, header)) = iter.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut pos = [0usize; 4];
    for (i, col) in COLUMNS.iter().enumerate() {
        pos[i] = header.iter().position(|h| h == col).ok_or_else(|| {
            Error::invalid(
                "CSV",
                format!(
                    "{source}:1: missing column `{col}` (need {})",
                    COLUMNS.join(", ")
                ),
            )
        })?;
    }
    Ok(iter
        .filter(|(_, fields)| !(fields.len() == 1 && fields[0].trim().is_empty()))
        .map(|(line, fields)| {
            let get = |i: usize| fields.get(pos[i]).cloned().unwrap_or_default();
            RawRow {
                line,
                publication: get(0),
                metric: get(1),
                value: get(2),
                date: get(3),
            }
        })
        .collect())
}

fn json_rows(body: &Value, source: &str) -> Result<Vec<RawRow>> {
    let items = body
        .as_array()
        .or_else(|| body.get("rows").and_then(Value::as_array))
        .ok_or_else(|| {
            Error::invalid(
                "analytics import",
                format!("{source}: expected a JSON array or {{\"rows\": [...]}}"),
            )
        })?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let get = |k: &str| match item.get(k) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            RawRow {
                line: i + 1,
                publication: get("publication"),
                metric: get("metric"),
                value: get("value"),
                date: get("date"),
            }
        })
        .collect())
}

/// RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. Returns (line, fields) per record.
#[cfg(test)]
mod tests {
    use super::*;

    struct Slugs;
    impl PublicationIndex for Slugs {
        fn resolve(&self, r: &str) -> Option<String> {
            (r == "hello" || r == "launch").then(|| format!("publication/{r}"))
        }
    }
    #[derive(Default)]
    struct Mem(std::collections::BTreeMap<String, MetricRecord>);
    impl MetricSink for Mem {
        fn write(&mut self, records: &[MetricRecord]) -> Result<usize> {
            for r in records {
                self.0.insert(r.id.clone(), r.clone());
            }
            Ok(records.len())
        }
    }

    #[test]
    fn csv_import_links_validates_and_is_idempotent() {
        let csv = "date,publication,metric,value,extra\n\
                   2026-11-01,hello,views,120,x\n\
                   2026-11-01,\"launch\",views,\"3,5\",y\n\
                   2026-11-02T10:00:00Z,launch,clicks,7,\n\
                   2026-11-01,ghost,views,1,\n\
                   yesterday,hello,views,1,\n";
        let mut sink = Mem::default();
        let report = import_csv(csv, "a.csv", &Slugs, &mut sink).unwrap();
        assert_eq!(report.imported, 2, "{report:?}");
        let lines: Vec<usize> = report.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 5, 6]);
        assert!(report.rejected[1].message.contains("ghost"));
        let again = import_csv(csv, "a.csv", &Slugs, &mut sink).unwrap();
        assert_eq!(again.imported, 2);
        assert_eq!(sink.0.len(), 2, "re-import must not duplicate");
        let clicks = sink.0.values().find(|r| r.metric == "clicks").unwrap();
        assert_eq!((clicks.date.as_str(), clicks.value), ("2026-11-02", 7.0));
    }

    #[test]
    fn missing_column_is_named() {
        let err = import_csv(
            "publication,metric\nx,y\n",
            "b.csv",
            &Slugs,
            &mut Mem::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("b.csv:1: missing column `value`"),
            "{err}"
        );
    }
}
