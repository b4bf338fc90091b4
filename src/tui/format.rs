//! Small display helpers shared by the panes.

use serde_json::Value;

/// `2026-11-25 00:15:22` in UTC (stable in tests; the column header says UTC).
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| "—".into(),
        |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

/// `11-25 00:15` — short form for narrow columns.
pub fn short_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| "—".into(), |t| t.strftime("%m-%d %H:%M").to_string())
}

pub fn money(usd: f64) -> String {
    // Model calls cost fractions of a cent: show them, not "$0.01".
    if usd != 0.0 && usd.abs() < 0.1 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

/// One line: newlines and tabs become spaces.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A run's output for reading: a JSON object becomes one `field:` per key, its text fields
/// with their own line breaks (a draft's Markdown reads as Markdown, not as `\n` escapes);
/// anything else (streamed text, partial JSON) is shown as it is.
pub fn readable_output(text: &str) -> String {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) else {
        return text.to_string();
    };
    let mut out = String::new();
    for (key, value) in fields {
        let line = match value {
            serde_json::Value::String(s) if s.contains('\n') => format!("{key}:\n{s}\n"),
            serde_json::Value::String(s) => format!("{key}: {s}\n"),
            other => format!("{key}: {other}\n"),
        };
        out.push_str(&line);
    }
    out
}

/// At most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Compact JSON for previews.
pub fn json_line(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => one_line(s),
        other => other.to_string(),
    }
}

/// Pretty JSON lines for detail views.
pub fn json_pretty(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// `12,345` style counts.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate as a whole percentage; `-` when it is over nothing (no 0% out of 0).
pub fn rate(rate: f64, over: i64) -> String {
    if over == 0 {
        "-".into()
    } else {
        format!("{:.0}%", rate * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::readable_output;

    #[test]
    fn json_output_reads_as_fields_with_real_line_breaks() {
        let text = r##"{"title":"Pricing","body":"# Pricing\n\n- anchor high","score":0.8}"##;
        assert_eq!(
            readable_output(text),
            "title: Pricing\nbody:\n# Pricing\n\n- anchor high\nscore: 0.8\n"
        );
        // Streamed or partial output is left alone.
        assert_eq!(readable_output(r#"{"title":"Pri"#), r#"{"title":"Pri"#);
        assert_eq!(readable_output("plain words"), "plain words");
    }
}
