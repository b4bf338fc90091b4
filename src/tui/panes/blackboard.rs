//! The blackboard: findings agents published for each other.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Wrap};

use super::pane::Pane;
use super::source::Source;
use super::{Ctx, nav_message, subject_kind};
use crate::protocol::{FindingRow, Op, Page, Query};
use crate::tui::format;
use crate::tui::keymap::Action;
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged, WINDOW};

#[derive(Debug, Default)]
pub struct BlackboardPane {
    pub list: Paged<FindingRow>,
}

impl Source for BlackboardPane {
    type Answer = Page<FindingRow>;

    /// The filter is a topic.
    fn query(&mut self) -> Option<Op> {
        let offset = self.list.start_load();
        let topic =
            (!self.list.filter.trim().is_empty()).then(|| self.list.filter.trim().to_string());
        Some(Op::Query {
            query: Query::Blackboard {
                topic,
                offset,
                limit: WINDOW,
            },
        })
    }

    fn fill(&mut self, page: Page<FindingRow>) {
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

impl Pane for BlackboardPane {
    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        match subject_kind(subject) {
            "finding" | "blackboard" => vec![Target::Blackboard],
            _ => Vec::new(),
        }
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Blackboard]
    }

    fn on_show(&self) -> Option<Target> {
        (!self.list.loaded_once && !self.list.loading).then_some(Target::Blackboard)
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("A topic.")
    }

    fn filter(&self) -> &str {
        &self.list.filter
    }

    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.list = Paged {
            filter: text,
            ..Default::default()
        };
        Ok(Some(Target::Blackboard))
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        nav_message(self.list.navigate(action, page), Target::Blackboard)
    }

    fn render(&self, frame: &mut Frame, area: Rect, _focused: bool, ctx: &Ctx<'_>) {
        let [list_area, detail_area] =
            Layout::vertical([Constraint::Fill(2), Constraint::Fill(1)]).areas(area);
        let view = ListView {
            title: "Blackboard".into(),
            focused: true,
            header: vec!["when", "topic", "author", "finding"],
            widths: vec![
                Constraint::Length(11),
                Constraint::Length(16),
                Constraint::Length(14),
                Constraint::Fill(1),
            ],
            empty: "No findings published yet.",
            theme: ctx.theme,
        };
        paged::render(
            frame,
            list_area,
            &self.list,
            &view,
            |f| {
                vec![
                    Cell::from(format::short_time(f.created_ms)),
                    Cell::from(f.topic.clone()),
                    Cell::from(f.author.clone()),
                    Cell::from(format::one_line(&f.text)),
                ]
            },
            |_| false,
        );
        let block = paged::block("Finding".into(), false, ctx.theme);
        let inner = block.inner(detail_area);
        frame.render_widget(block, detail_area);
        if let Some(f) = self.list.selected_row() {
            let mut lines = vec![Line::raw(f.text.clone())];
            if !f.data.is_null() {
                lines.push(Line::raw(format::json_line(&f.data)));
            }
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
        }
    }
}
