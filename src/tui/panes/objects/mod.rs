//! Objects: browse (paged), history of one object, diff between versions, revert.
//! The list is here; [`history`] holds the open object's versions and their diff.

mod history;

pub use history::{Diff, History};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Cell;

use super::pane::Pane;
use super::source::Source;
use super::{Ctx, filter_tokens, nav_message, subject_kind};
use crate::protocol::{ObjectRow, ObjectVersionRow, Op, Page, Query};
use crate::tui::format;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged, WINDOW};

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
}
