//! The timeline as a table (newest or oldest first), the verification status above it and
//! the selected entry below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::{AuditPane, jump_target};
use crate::tui::format;
use crate::tui::keymap::Action;
use crate::tui::paged;
use crate::tui::panes::{Ctx, notice, table};
use crate::tui::theme::Role;

pub fn timeline(pane: &AuditPane, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
    let theme = ctx.theme;
    let [status_area, list_area, detail_area] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(if area.height > 16 && !pane.entries.is_empty() {
            7
        } else {
            0
        }),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(status_line(pane, ctx)), status_area);
    let block = paged::block(title(pane), true, theme);
    let inner = block.inner(list_area);
    frame.render_widget(block, list_area);
    if pane.entries.is_empty() {
        let (text, role) = match (&pane.error, pane.loading || !pane.loaded_once) {
            (Some(e), _) => (e.as_str(), Role::Warning),
            (None, true) => ("loading…", Role::Muted),
            (None, false) => ("No audit entries match.", Role::Muted),
        };
        notice(frame, inner, text, role, theme);
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    // Rows are held newest first; oldest-first shows them bottom up.
    let len = pane.entries.len();
    let shown = |d: usize| if pane.oldest_first { len - 1 - d } else { d };
    let top = paged::top_row(shown(pane.selected), height);
    let rows: Vec<Row<'static>> = (top..len.min(top + height))
        .map(|d| (shown(d), &pane.entries[shown(d)]))
        .map(|(i, e)| {
            table::row(
                vec![
                    Cell::from(e.seq.to_string()),
                    Cell::from(format::time(e.ts_ms)),
                    Cell::from(e.actor.clone()),
                    Cell::from(e.action.clone()),
                    Cell::from(e.subject.clone()),
                ],
                i == pane.selected,
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
        entry(pane, frame, detail_area, ctx);
    }
}

/// "Audit timeline, newest first seq 502–303 /filter".
fn title(pane: &AuditPane) -> String {
    let filter = if pane.filter_text.is_empty() {
        String::new()
    } else {
        format!(" /{}", pane.filter_text)
    };
    let position = match (pane.entries.first(), pane.entries.last()) {
        (Some(a), Some(b)) if pane.oldest_first => format!(" seq {}–{}", b.seq, a.seq),
        (Some(a), Some(b)) => format!(" seq {}–{}", a.seq, b.seq),
        _ => String::new(),
    };
    let order = if pane.oldest_first {
        "oldest"
    } else {
        "newest"
    };
    format!("Audit timeline, {order} first{position}{filter}")
}

fn entry(pane: &AuditPane, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
    let theme = ctx.theme;
    let block = paged::block("Entry".into(), false, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(e) = pane.selected_entry() {
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

fn status_line(pane: &AuditPane, ctx: &Ctx<'_>) -> Line<'static> {
    let (text, role) = pane.verify.status(&ctx.keymap.label(Action::Verify));
    Line::from(vec![
        Span::styled(text, ctx.theme.style(role)),
        Span::styled(
            format!(
                "   {} filter (actor: agent: object: action: since: until:) · {} export",
                ctx.keymap.label(Action::Filter),
                ctx.keymap.label(Action::Export)
            ),
            ctx.theme.style(Role::Muted),
        ),
    ])
}
