//! The open object's versions (oldest first) and the diff of the selected one: their
//! sources, the keys that move through them and revert, and how they render.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::ObjectsPane;
use crate::protocol::{ObjectVersionRow, Op, Query};
use crate::tui::format;
use crate::tui::keymap::Action;
use crate::tui::message::{Message, Target};
use crate::tui::paged;
use crate::tui::panes::approvals::diff_line;
use crate::tui::panes::source::Source;
use crate::tui::panes::{Ctx, notice, table};
use crate::tui::theme::Role;

/// The versions of the open object, oldest first.
pub struct History<'a>(pub &'a mut ObjectsPane);

impl Source for History<'_> {
    type Answer = Vec<ObjectVersionRow>;

    fn query(&mut self) -> Option<Op> {
        let (kind, id) = self.0.open.clone()?;
        Some(Op::Query {
            query: Query::ObjectHistory { kind, id },
        })
    }

    /// Selects the latest version.
    fn fill(&mut self, rows: Vec<ObjectVersionRow>) {
        let pane = &mut *self.0;
        pane.history_selected = rows.len().saturating_sub(1);
        pane.history = rows;
        pane.history_error = None;
        pane.diff = None;
    }

    fn fail(&mut self, message: String) {
        self.0.history_error = Some(message);
    }
}

/// The diff of the selected version against the latest (or its parent when it is the
/// latest).
pub struct Diff<'a>(pub &'a mut ObjectsPane);

impl Source for Diff<'_> {
    type Answer = String;

    fn query(&mut self) -> Option<Op> {
        let pane = &*self.0;
        let (kind, id) = pane.open.clone()?;
        let selected = pane.history.get(pane.history_selected)?;
        let latest = pane.history.last()?;
        let (from, to) = if selected.version == latest.version {
            (selected.parent?, selected.version)
        } else {
            (selected.version, latest.version)
        };
        Some(Op::Query {
            query: Query::ObjectDiff { kind, id, from, to },
        })
    }

    fn fill(&mut self, diff: String) {
        self.0.diff = Some(if diff.is_empty() {
            "(no differences)".into()
        } else {
            diff
        });
        self.0.diff_error = None;
    }

    fn fail(&mut self, message: String) {
        self.0.diff_error = Some(message);
    }
}

impl ObjectsPane {
    pub(super) fn on_history_action(&mut self, action: Action) -> Option<Message> {
        let last = self.history.len().saturating_sub(1);
        match action {
            Action::Up => self.history_selected = self.history_selected.saturating_sub(1),
            Action::Down => self.history_selected = (self.history_selected + 1).min(last),
            Action::Top => self.history_selected = 0,
            Action::Bottom => self.history_selected = last,
            Action::Diff | Action::Open => return Some(Message::Load(Target::Diff)),
            Action::Revert => {
                let (kind, id) = self.open.clone()?;
                let to = self.history.get(self.history_selected)?;
                let latest = self.history.last()?;
                if to.version == latest.version {
                    return Some(Message::Flash(
                        "That is already the current version.".into(),
                    ));
                }
                return Some(Message::Confirm {
                    title: "Revert".into(),
                    lines: vec![
                        format!("Revert {kind}/{id} to version {}?", to.version),
                        format!(
                            "A new version {} is written; history keeps every version.",
                            latest.version + 1
                        ),
                    ],
                    then: Box::new(Message::Send {
                        label: format!("revert {kind}/{id}"),
                        ops: vec![Op::RevertObject {
                            kind,
                            id,
                            to_version: to.version,
                            based_on: latest.version,
                        }],
                        cleanup: None,
                    }),
                });
            }
            _ => return None,
        }
        self.diff = None;
        Some(Message::Redraw)
    }

    pub(super) fn render_history(&self, frame: &mut Frame, hist_area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let title = match &self.open {
            Some((k, i)) => format!("History {k}/{i}"),
            None => "History".into(),
        };
        let block = paged::block(title, self.in_history, theme);
        let inner = block.inner(hist_area);
        frame.render_widget(block, hist_area);
        if let Some(e) = &self.history_error {
            notice(frame, inner, e, Role::Warning, theme);
        } else if self.open.is_none() {
            notice(
                frame,
                inner,
                "Open an object to see its versions.",
                Role::Muted,
                theme,
            );
        } else {
            let height = usize::from(inner.height.saturating_sub(1));
            let top = paged::top_row(self.history_selected, height);
            let rows: Vec<Row<'static>> = self
                .history
                .iter()
                .enumerate()
                .skip(top)
                .take(height)
                .map(|(i, v)| {
                    table::row(
                        vec![
                            Cell::from(v.version.to_string()),
                            Cell::from(v.author.clone()),
                            Cell::from(format::short_time(v.created_ms)),
                            Cell::from(format::one_line(&v.note)),
                        ],
                        i == self.history_selected,
                        theme,
                    )
                })
                .collect();
            let grid = table::with_header(
                rows,
                [
                    Constraint::Length(3),
                    Constraint::Length(16),
                    Constraint::Length(11),
                    Constraint::Fill(1),
                ],
                &["v", "author", "when", "note"],
                theme,
            );
            frame.render_widget(grid, inner);
        }
    }

    pub(super) fn render_diff(&self, frame: &mut Frame, diff_area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let block = paged::block(
            format!(
                "Diff ({} diff · {} revert)",
                ctx.keymap.label(Action::Diff),
                ctx.keymap.label(Action::Revert)
            ),
            false,
            theme,
        );
        let inner = block.inner(diff_area);
        frame.render_widget(block, diff_area);
        if let Some(e) = &self.diff_error {
            notice(frame, inner, e, Role::Warning, theme);
        } else if let Some(d) = &self.diff {
            let lines: Vec<Line<'static>> = d
                .lines()
                .take(usize::from(inner.height))
                .map(|l| diff_line(l, theme))
                .collect();
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        } else if let Some(v) = self.history.get(self.history_selected) {
            let body = format::json_pretty(&v.body);
            let lines: Vec<Line<'static>> = body
                .lines()
                .take(usize::from(inner.height))
                .map(|l| Line::raw(l.to_string()))
                .collect();
            frame.render_widget(Paragraph::new(lines), inner);
        }
    }
}
