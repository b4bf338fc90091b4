//! Objects: browse (paged), history of one object, diff between versions, revert.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::approvals::diff_line;
use super::pane::Pane;
use super::source::Source;
use super::{Ctx, filter_tokens, nav_message, subject_kind, table};
use crate::protocol::{ObjectRow, ObjectVersionRow, Op, Page, Query};
use crate::tui::format;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged, WINDOW};
use crate::tui::theme::Role;

#[derive(Debug, Default)]
pub struct ObjectsPane {
    pub list: Paged<ObjectRow>,
    pub include_archived: bool,
    /// The object whose history is shown.
    pub open: Option<(String, String)>,
    pub history: Vec<ObjectVersionRow>,
    pub history_selected: usize,
    pub history_error: Option<String>,
    /// Focus is on the history list (else on the object list).
    pub in_history: bool,
    pub diff: Option<String>,
    pub diff_error: Option<String>,
}

/// Subject kinds that name no stored object (the other panes watch them); any other
/// kind is an object kind (`draft`, `customer`, …).
const NOT_OBJECT_KINDS: &[&str] = &[
    "task",
    "run",
    "approval",
    "queue",
    "finding",
    "blackboard",
    "metrics",
    "cost",
    "audit",
];

impl Source for ObjectsPane {
    type Answer = Page<ObjectRow>;

    /// Filter: `kind:draft words…`.
    fn query(&mut self) -> Option<Op> {
        let offset = self.list.start_load();
        let (pairs, text) = filter_tokens(&self.list.filter, Some(&["kind"]));
        let kind = pairs
            .iter()
            .find(|(k, _)| k == "kind")
            .map(|(_, v)| v.clone());
        Some(Op::Query {
            query: Query::Objects {
                kind,
                text,
                include_archived: self.include_archived,
                offset,
                limit: WINDOW,
            },
        })
    }

    fn fill(&mut self, page: Page<ObjectRow>) {
        self.list.fill(page.items, page.total);
    }

    fn fail(&mut self, message: String) {
        self.list.fail(message);
    }

    fn loading(&self) -> bool {
        self.list.loading
    }

    fn wants_reload(&self) -> bool {
        self.list.loaded_once
    }
}

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

impl Pane for ObjectsPane {
    fn context(&self) -> Option<Context> {
        Some(Context::Objects)
    }

    /// The list once it was shown, and the history of the open object when it changed.
    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        if NOT_OBJECT_KINDS.contains(&subject_kind(subject)) {
            return Vec::new();
        }
        let mut targets = Vec::new();
        if self.list.loaded_once {
            targets.push(Target::Objects);
        }
        if self
            .open
            .as_ref()
            .is_some_and(|(k, i)| subject == format!("{k}/{i}"))
        {
            targets.push(Target::History);
        }
        targets
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Objects, Target::History]
    }

    fn on_show(&self) -> Option<Target> {
        (!self.list.loaded_once && !self.list.loading).then_some(Target::Objects)
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("Words in the title; kind:draft narrows by kind.")
    }

    fn filter(&self) -> &str {
        &self.list.filter
    }

    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.list = Paged {
            filter: text,
            ..Default::default()
        };
        Ok(Some(Target::Objects))
    }

    fn actions(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::Open, "history"),
            (Action::Diff, "diff"),
            (Action::Revert, "revert"),
        ]
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        if self.in_history {
            return self.on_history_action(action);
        }
        if let Some(m) = nav_message(self.list.navigate(action, page), Target::Objects) {
            return Some(m);
        }
        match action {
            Action::Archived => {
                self.include_archived = !self.include_archived;
                Some(Message::Load(Target::Objects))
            }
            Action::Open => {
                let o = self.list.selected_row()?;
                self.open = Some((o.kind.clone(), o.id.clone()));
                self.history.clear();
                self.diff = None;
                self.in_history = true;
                Some(Message::Load(Target::History))
            }
            _ => None,
        }
    }

    /// Esc in the history goes back to the list.
    fn back(&mut self) -> bool {
        if self.in_history {
            self.in_history = false;
            true
        } else {
            false
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, _focused: bool, ctx: &Ctx<'_>) {
        self.draw(frame, area, ctx);
    }
}

impl ObjectsPane {
    fn on_history_action(&mut self, action: Action) -> Option<Message> {
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

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(area);
        let view = ListView {
            title: if self.include_archived {
                "Objects (with archived)".into()
            } else {
                "Objects".into()
            },
            focused: !self.in_history,
            header: vec!["kind", "id", "v", "title", "updated"],
            widths: vec![
                Constraint::Length(10),
                Constraint::Length(12),
                Constraint::Length(3),
                Constraint::Fill(1),
                Constraint::Length(11),
            ],
            empty: "No objects yet.",
            theme,
        };
        paged::render(
            frame,
            left,
            &self.list,
            &view,
            |o| {
                vec![
                    Cell::from(o.kind.clone()),
                    Cell::from(o.id.clone()),
                    Cell::from(o.version.to_string()),
                    Cell::from(format::one_line(&o.title)),
                    Cell::from(format::short_time(o.updated_ms)),
                ]
            },
            |o| o.archived,
        );
        let [hist_area, diff_area] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(right);
        self.render_history(frame, hist_area, ctx);
        self.render_diff(frame, diff_area, ctx);
    }

    fn render_history(&self, frame: &mut Frame, hist_area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let title = match &self.open {
            Some((k, i)) => format!("History {k}/{i}"),
            None => "History".into(),
        };
        let block = paged::block(title, self.in_history, theme);
        let inner = block.inner(hist_area);
        frame.render_widget(block, hist_area);
        if let Some(e) = &self.history_error {
            super::notice(frame, inner, e, Role::Warning, theme);
        } else if self.open.is_none() {
            super::notice(
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

    fn render_diff(&self, frame: &mut Frame, diff_area: Rect, ctx: &Ctx<'_>) {
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
            super::notice(frame, inner, e, Role::Warning, theme);
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
