//! The timeline's filter language (`actor:operator agent:RUN object:draft/x action:task.*
//! since:2026-11-01 until:…`) and the `keel audit export` command a filter becomes.

use crate::protocol::AuditFilter as Filter;
use crate::tui::panes::filter_tokens;

/// Parses a typed filter. Free words match the subject prefix.
pub fn parse(text: &str) -> Result<Filter, String> {
    let (pairs, words) = filter_tokens(text, None);
    let mut f = Filter::default();
    for (k, v) in pairs {
        match k.as_str() {
            "actor" => f.actor = Some(v),
            "agent" => f.actor = Some(format!("agent:{v}")),
            "object" | "subject" => f.subject = Some(v),
            "action" => f.action = Some(v),
            "since" => f.since_ms = Some(parse_time(&v)?),
            "until" => f.until_ms = Some(parse_time(&v)?),
            other => {
                return Err(format!(
                    "unknown filter {other}: (use actor: agent: object: action: since: until:)"
                ));
            }
        }
    }
    if let Some(w) = words {
        f.subject = Some(format!("{}*", w.trim_end_matches('*')));
    }
    Ok(f)
}

fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let date: jiff::civil::Date = text
        .parse()
        .map_err(|_| format!("not a time: {text} (use 2026-11-01 or RFC 3339)"))?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| e.to_string())
}

/// How to export what the filter shows, as lines of a notice.
pub fn export_hint(f: &Filter) -> Vec<String> {
    use std::fmt::Write;
    let mut cmd = String::from("keel audit export");
    for (flag, value) in [
        ("--actor", &f.actor),
        ("--action", &f.action),
        ("--subject", &f.subject),
    ] {
        if let Some(v) = value {
            let _ = write!(cmd, " {flag} '{v}'");
        }
    }
    for (flag, value) in [("--since", f.since_ms), ("--until", f.until_ms)] {
        if let Some(ms) = value
            && let Ok(ts) = jiff::Timestamp::from_millisecond(ms)
        {
            let _ = write!(cmd, " {flag} {ts}");
        }
    }
    cmd.push_str(" --output audit.jsonl");
    vec![
        "Export writes every matching entry as JSON lines, oldest first, streaming.".into(),
        "Run this in a shell (the current filter is applied):".into(),
        String::new(),
        format!("  {cmd}"),
        String::new(),
        "Then `keel audit verify` proves the chain is intact.".into(),
    ]
}
