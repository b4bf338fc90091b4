//! The audit timeline: newest first, paged by sequence number (keyset paging, so a log of
//! a million entries costs one page per move), filtered by actor, agent, object, action and
//! time; jumps to the run, object or approval an entry names; chain verification.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::{Ctx, filter_tokens, table};
use serde::Deserialize;

use crate::core::audit::{Entry, Filter};
use crate::protocol::{Op, Query};
use crate::tui::format;
use crate::tui::keymap::Action;
use crate::tui::message::{AuditFetch, Message, Target};
use crate::tui::paged;
use crate::tui::theme::Role;

pub const PAGE: usize = 200;
/// Pages kept in memory at once.
const KEEP_PAGES: usize = 3;

/// The answer to `Query::AuditVerify` (the JSON of `core::audit::Verification`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Verification {
    pub entries: i64,
    pub first_broken: Option<Broken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VerifyState {
    NotRun,
    Running,
    Done(Verification),
    Failed(String),
}

#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent flags of one list's state
pub struct AuditPane {
    pub filter: Filter,
    pub filter_text: String,
    /// `before_seq` cursor of every page reached so far (page 0 has none).
    pub cursors: Vec<Option<i64>>,
    /// Index of the first loaded page and the length of each loaded page.
    pub first_page: usize,
    pub page_lens: Vec<usize>,
    pub entries: Vec<Entry>,
    pub selected: usize,
    /// The last page came back short: nothing older matches.
    pub exhausted: bool,
    pub loading: bool,
    pub loaded_once: bool,
    pub error: Option<String>,
    pub verify: VerifyState,
    /// Rows a key asked to move past the loaded window; applied when the page lands.
    carry: usize,
    /// Show the window oldest first (a log read top to bottom); the cursor starts newest.
    pub oldest_first: bool,
    /// After a jump to the oldest entries: how far the window is from the newest is not
    /// known, so newer pages are fetched by `after_seq` until one comes back short.
    pub top_unknown: bool,
}

impl Default for AuditPane {
    fn default() -> Self {
        AuditPane {
            filter: Filter::default(),
            filter_text: String::new(),
            cursors: vec![None],
            first_page: 0,
            page_lens: Vec::new(),
            entries: Vec::new(),
            selected: 0,
            exhausted: false,
            loading: false,
            loaded_once: false,
            error: None,
            verify: VerifyState::NotRun,
            carry: 0,
            oldest_first: false,
            top_unknown: false,
        }
    }
}

impl AuditPane {
    /// The query for `fetch`, or None when there is nothing to fetch in that direction.
    pub fn query(&mut self, fetch: AuditFetch) -> Option<Op> {
        // Pages above a jump to the oldest are found from the window's top entry upwards.
        let upwards = match fetch {
            AuditFetch::Oldest => Some(None),
            AuditFetch::Newer if self.top_unknown => Some(Some(self.entries.first()?.seq)),
            _ => None,
        };
        if let Some(after_seq) = upwards {
            self.loading = true;
            return Some(Op::Query {
                query: Query::AuditPage {
                    filter: Filter {
                        after_seq,
                        before_seq: None,
                        ..self.filter.clone()
                    },
                    limit: PAGE,
                    oldest_first: true,
                },
            });
        }
        let before_seq = match fetch {
            AuditFetch::Reset | AuditFetch::Oldest => None,
            AuditFetch::Older => {
                if self.exhausted {
                    return None;
                }
                Some(self.entries.last()?.seq)
            }
            AuditFetch::Newer => {
                if self.first_page == 0 {
                    return None;
                }
                *self.cursors.get(self.first_page - 1)?
            }
        };
        self.loading = true;
        let filter = Filter {
            before_seq,
            ..self.filter.clone()
        };
        Some(Op::Query {
            query: Query::AuditPage {
                filter,
                limit: PAGE,
                oldest_first: false,
            },
        })
    }

    pub fn fill(&mut self, fetch: AuditFetch, mut page: Vec<Entry>) {
        self.loading = false;
        self.loaded_once = true;
        self.error = None;
        let short = page.len() < PAGE;
        match fetch {
            AuditFetch::Oldest => {
                // Asked oldest first; the window holds entries newest first.
                page.reverse();
                self.carry = 0;
                self.cursors = vec![None];
                self.first_page = 0;
                self.page_lens = vec![page.len()];
                self.entries = page;
                self.exhausted = true;
                self.top_unknown = !short;
                self.selected = self.entries.len().saturating_sub(1);
            }
            AuditFetch::Newer if self.top_unknown => {
                page.reverse();
                self.prepend(page);
                if short {
                    // The newest entry is loaded: back to paging by cursors from the top.
                    self.top_unknown = false;
                    self.first_page = 0;
                    self.rebuild_cursors();
                }
            }
            AuditFetch::Reset => {
                // New entries arrive on top: keep the cursor on the entry it was on.
                let was = self.selected_entry().map(|e| e.seq);
                self.carry = 0;
                self.cursors = vec![None];
                self.first_page = 0;
                self.page_lens = vec![page.len()];
                self.entries = page;
                self.exhausted = short;
                self.selected = was
                    .and_then(|seq| self.entries.iter().position(|e| e.seq == seq))
                    .unwrap_or(self.selected)
                    .min(self.entries.len().saturating_sub(1));
            }
            AuditFetch::Older => {
                if page.is_empty() {
                    self.carry = 0;
                    self.exhausted = true;
                    return;
                }
                let index = self.first_page + self.page_lens.len();
                let cursor = self.entries.last().map(|e| e.seq);
                if self.cursors.len() <= index {
                    self.cursors.push(cursor);
                }
                self.page_lens.push(page.len());
                self.entries.extend(page);
                self.exhausted = short;
                self.selected =
                    (self.selected + std::mem::take(&mut self.carry)).min(self.entries.len() - 1);
                if self.page_lens.len() > KEEP_PAGES {
                    let drop = self.page_lens.remove(0);
                    self.entries.drain(..drop);
                    self.selected = self.selected.saturating_sub(drop);
                    self.first_page += 1;
                }
            }
            AuditFetch::Newer => {
                self.first_page = self.first_page.saturating_sub(1);
                self.prepend(page);
            }
        }
    }

    /// Puts a page of newer entries (newest first) above the window, keeping the cursor on
    /// its entry, and lets the oldest page go when the window is full.
    fn prepend(&mut self, page: Vec<Entry>) {
        let n = page.len();
        if n == 0 {
            // Nothing newer: the move that asked for it stops at the top.
            self.carry = 0;
            return;
        }
        self.page_lens.insert(0, n);
        let mut entries = page;
        entries.append(&mut self.entries);
        self.entries = entries;
        self.selected = (self.selected + n).saturating_sub(std::mem::take(&mut self.carry));
        if self.page_lens.len() > KEEP_PAGES
            && let Some(drop) = self.page_lens.pop()
        {
            self.entries.truncate(self.entries.len() - drop);
            self.exhausted = false;
        }
    }

    /// The `before_seq` cursor of each loaded page when the window starts at the newest
    /// entry: none for the first, then the last entry of the page above.
    fn rebuild_cursors(&mut self) {
        self.cursors = vec![None];
        let mut end = 0;
        for len in &self.page_lens[..self.page_lens.len().saturating_sub(1)] {
            end += len;
            self.cursors.push(self.entries.get(end - 1).map(|e| e.seq));
        }
    }

    pub fn fail(&mut self, message: String) {
        self.loading = false;
        self.loaded_once = true;
        self.carry = 0;
        self.error = Some(message);
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// Parses `actor:operator agent:RUN object:draft/x action:task.* since:2026-11-01
    /// until:… ` into a filter. Free words match the subject prefix.
    pub fn set_filter(&mut self, text: &str) -> Result<(), String> {
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
        self.filter = f;
        self.filter_text = text.to_string();
        self.selected = 0;
        Ok(())
    }

    pub fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        if action == Action::Order {
            self.oldest_first = !self.oldest_first;
            return Some(Message::Redraw);
        }
        // Oldest first turns the list upside down: "down" walks towards newer entries.
        let action = if self.oldest_first {
            match action {
                Action::Up => Action::Down,
                Action::Down => Action::Up,
                Action::PageUp => Action::PageDown,
                Action::PageDown => Action::PageUp,
                Action::Top => Action::Bottom,
                Action::Bottom => Action::Top,
                other => other,
            }
        } else {
            action
        };
        let len = self.entries.len();
        let older = |s: &Self| {
            (!s.exhausted && !s.loading).then_some(Message::Load(Target::Audit(AuditFetch::Older)))
        };
        let newer = |s: &Self| {
            ((s.first_page > 0 || s.top_unknown) && !s.loading)
                .then_some(Message::Load(Target::Audit(AuditFetch::Newer)))
        };
        match action {
            Action::Down | Action::PageDown => {
                let step = if action == Action::Down { 1 } else { page };
                if self.selected + step < len {
                    self.selected += step;
                    // Prefetch before the end is reached.
                    if len - self.selected < page.max(1)
                        && let Some(m) = older(self)
                    {
                        return Some(m);
                    }
                    return Some(Message::Redraw);
                }
                let target = self.selected + step;
                self.selected = len.saturating_sub(1);
                match older(self) {
                    Some(m) => {
                        self.carry = target - self.selected;
                        Some(m)
                    }
                    None => Some(Message::Redraw),
                }
            }
            Action::Up | Action::PageUp => {
                let step = if action == Action::Up { 1 } else { page };
                if self.selected >= step {
                    self.selected -= step;
                    return Some(Message::Redraw);
                }
                let short_by = step - self.selected;
                self.selected = 0;
                match newer(self) {
                    Some(m) => {
                        self.carry = short_by;
                        Some(m)
                    }
                    None => Some(Message::Redraw),
                }
            }
            Action::Top => {
                self.selected = 0;
                Some(Message::Load(Target::Audit(AuditFetch::Reset)))
            }
            Action::Bottom => {
                self.selected = len.saturating_sub(1);
                // Jump to the oldest entry in one query, however long the log is.
                if self.exhausted || self.loading {
                    Some(Message::Redraw)
                } else {
                    Some(Message::Load(Target::Audit(AuditFetch::Oldest)))
                }
            }
            Action::Verify => Some(Message::Load(Target::AuditVerify)),
            Action::Export => Some(Message::Notice {
                title: "Export the audit log".into(),
                lines: export_hint(&self.filter),
            }),
            Action::Jump | Action::Open => {
                let e = self.selected_entry()?;
                Some(Message::Jump(jump_target(e)))
            }
            _ => None,
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let [status_area, list_area, detail_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Fill(1),
            Constraint::Length(if area.height > 16 && !self.entries.is_empty() {
                7
            } else {
                0
            }),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(self.status_line(ctx)), status_area);
        let filter = if self.filter_text.is_empty() {
            String::new()
        } else {
            format!(" /{}", self.filter_text)
        };
        let position = match (self.entries.first(), self.entries.last()) {
            (Some(a), Some(b)) if self.oldest_first => format!(" seq {}–{}", b.seq, a.seq),
            (Some(a), Some(b)) => format!(" seq {}–{}", a.seq, b.seq),
            _ => String::new(),
        };
        let block = paged::block(
            format!(
                "Audit timeline, {} first{position}{filter}",
                if self.oldest_first {
                    "oldest"
                } else {
                    "newest"
                }
            ),
            true,
            theme,
        );
        let inner = block.inner(list_area);
        frame.render_widget(block, list_area);
        if self.entries.is_empty() {
            let (text, role) = match (&self.error, self.loading || !self.loaded_once) {
                (Some(e), _) => (e.as_str(), Role::Warning),
                (None, true) => ("loading…", Role::Muted),
                (None, false) => ("No audit entries match.", Role::Muted),
            };
            super::notice(frame, inner, text, role, theme);
            return;
        }
        let height = usize::from(inner.height.saturating_sub(1));
        // Rows are held newest first; oldest-first shows them bottom up.
        let len = self.entries.len();
        let shown = |d: usize| if self.oldest_first { len - 1 - d } else { d };
        let top = paged::top_row(shown(self.selected), height);
        let rows: Vec<Row<'static>> = (top..len.min(top + height))
            .map(|d| (shown(d), &self.entries[shown(d)]))
            .map(|(i, e)| {
                table::row(
                    vec![
                        Cell::from(e.seq.to_string()),
                        Cell::from(format::time(e.ts_ms)),
                        Cell::from(e.actor.clone()),
                        Cell::from(e.action.clone()),
                        Cell::from(e.subject.clone()),
                    ],
                    i == self.selected,
                    theme,
                )
            })
            .collect();
        let grid = table::with_header(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(19),
                Constraint::Length(18),
                Constraint::Length(20),
                Constraint::Fill(1),
            ],
            &["seq", "time (UTC)", "actor", "action", "subject"],
            theme,
        )
        .style(theme.style(Role::Text));
        frame.render_widget(grid, inner);
        if detail_area.height > 0 {
            self.render_entry(frame, detail_area, ctx);
        }
    }

    fn render_entry(&self, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let block = paged::block("Entry".into(), false, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if let Some(e) = self.selected_entry() {
            let lines = vec![
                Line::from(vec![
                    Span::styled("hash ", theme.style(Role::Muted)),
                    Span::raw(format::clip(&e.hash, 16)),
                    Span::styled("  prev ", theme.style(Role::Muted)),
                    Span::raw(format::clip(&e.prev_hash, 16)),
                    Span::styled("  enter: jump to ", theme.style(Role::Muted)),
                    Span::raw(jump_target(e)),
                ]),
                Line::raw(format::json_line(&e.payload)),
            ];
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
    }

    fn status_line(&self, ctx: &Ctx<'_>) -> Line<'static> {
        let theme = ctx.theme;
        let (text, role) = match &self.verify {
            VerifyState::NotRun => (
                format!(
                    "chain: not verified yet — {} verifies",
                    ctx.keymap.label(Action::Verify)
                ),
                Role::Muted,
            ),
            VerifyState::Running => ("chain: verifying…".to_string(), Role::Info),
            VerifyState::Done(v) => match &v.first_broken {
                None => (
                    format!(
                        "chain: verified, {} entries intact",
                        format::count(v.entries.unsigned_abs())
                    ),
                    Role::Success,
                ),
                Some(b) => (
                    format!("chain: BROKEN at seq {}: {}", b.seq, b.reason),
                    Role::Error,
                ),
            },
            VerifyState::Failed(e) => (format!("chain: verification failed: {e}"), Role::Error),
        };
        Line::from(vec![
            Span::styled(text, theme.style(role)),
            Span::styled(
                format!(
                    "   {} filter (actor: agent: object: action: since: until:) · {} export",
                    ctx.keymap.label(Action::Filter),
                    ctx.keymap.label(Action::Export)
                ),
                theme.style(Role::Muted),
            ),
        ])
    }
}

/// What an entry points at: its subject, or the run of an agent actor.
pub fn jump_target(e: &Entry) -> String {
    if e.subject.is_empty()
        && let Some(run) = e.actor.strip_prefix("agent:")
    {
        return format!("run/{run}");
    }
    e.subject.clone()
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

fn export_hint(f: &Filter) -> Vec<String> {
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
